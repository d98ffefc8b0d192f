"""The app in headless Chromium (Playwright), started as ./run.sh starts it; pytest marker `browser`."""
