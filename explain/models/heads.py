"""New classifier heads, built from a plain spec so an exported model can rebuild them."""

from __future__ import annotations

from torch import nn

from explain.errors import LensError

HEADS: dict[str, str] = {
    "linear": "Linear layer",
    "mlp": "Dense(64) + BatchNorm + Dropout + Dense",
}



def build_head(spec: dict) -> nn.Module:
    """A new classifier head from a plain spec: {"kind", "in_features", "num_classes", "hidden", "dropout"}."""
    kind = spec.get("kind")
    n_in, n_out = int(spec["in_features"]), int(spec["num_classes"])
    if kind == "linear":
        return nn.Linear(n_in, n_out)
    if kind == "mlp":
        hidden = int(spec.get("hidden", 64))
        return nn.Sequential(
            nn.Linear(n_in, hidden),
            nn.ReLU(),
            nn.BatchNorm1d(hidden),
            nn.Dropout(float(spec.get("dropout", 0.5))),
            nn.Linear(hidden, n_out),
        )
    raise LensError(f"Unknown head '{kind}'. Choose one of: {', '.join(HEADS)}.")


