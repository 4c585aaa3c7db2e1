"""What the console scripts run, as library functions: ``fit.train``, ``evaluate.evaluate``,
``replay.replay``, and the files they write (``outputs``)."""
