"""Streamlit widgets the pages share; with lessons/ (the pages), the only code that imports streamlit.

Pages stay thin: they call these widgets and explain.* functions and draw the result objects.

    sidebar       the shared sidebar: language, presenter mode, backbone picker, weights upload, device
    backbones     registry backbones (cached for all sessions), a session's own models, weights-file uploads
    pickers       a photo (sample, upload, camera), the sidebar's backbone with it, a class
    errors        a user's error as st.error in the chosen language; run_safely keeps the page running
    session       the one bounded per-session cache (least recently used dropped first), image_key
    classroom     presenter mode, lesson panels, shareable links (st.query_params)
    i18n          t(): every visible string in English or Korean
    limits        the server's caps, captioned under the widgets they bound
    jobs          the gate that queues heavy jobs (ideal images, attacks, training)
    plots         Plotly figures shared by the pages
    featuremaps   a photo's recording of every layer and a model's summary, kept per session
    cam           class-map controls, panel and gallery (Classify, Grad-CAM, Adversarial, Transfer)
    ideal         the live curves of the Ideal images page
    transfer      dataset builder, training curves, confusion matrix, prediction grid
"""
