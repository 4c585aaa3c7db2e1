"""``pick_bpr.py ROOT LABEL...``: prints the validation curve (val/recall@20 per epoch) of
each run ROOT/B<label>, picks the variant and epoch of the best value, and writes LABEL and
CKPT (run A's checkpoint of that epoch, or its last one before it) to ROOT/pick.env."""

import glob
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def curve(run: str) -> list[tuple[int, float]]:
    """(0-based epoch, val/recall@20) of a run, from its TensorBoard events."""
    out = []
    for f in glob.glob(f"{run}/**/events.out.tfevents*", recursive=True):
        ea = EventAccumulator(f)
        ea.Reload()
        if "val/recall@20" not in ea.Tags()["scalars"]:
            continue
        epoch_at = {e.step: int(e.value) for e in ea.Scalars("epoch")}
        out += [(epoch_at[e.step], e.value) for e in ea.Scalars("val/recall@20")]
    return sorted(out)


root, labels = sys.argv[1], sys.argv[2:]
best = (-1.0, "", -1)
for label in labels:
    points = curve(f"{root}/B{label}")
    print(f"{label}: (epoch, val recall@20)", [(e + 1, round(v, 4)) for e, v in points])
    best = max([best, *((v, label, e) for e, v in points)])
value, label, epoch = best
if epoch < 0:
    sys.exit(
        f"no val/recall@20 in the TensorBoard events of {root}/B<label>: "
        "did the runs reach a validation epoch?"
    )
saved = sorted(int(p[-8:-5]) for p in glob.glob(f"{root}/A{label}/checkpoints/epoch_*.ckpt"))
chosen = max((e for e in saved if e <= epoch), default=None)
if chosen is None:
    sys.exit(f"run A{label} saved no checkpoint at or before epoch {epoch + 1}")
print(
    f"chosen: {label}, epoch {epoch + 1} (val recall@20 {value:.4f}); A's checkpoint "
    f"after epoch {chosen + 1}"
)
with open(f"{root}/pick.env", "w") as f:
    f.write(f"LABEL={label}\nCKPT=epoch_{chosen:03d}.ckpt\n")
