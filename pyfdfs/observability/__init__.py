"""Operations support: Prometheus metrics, the storage access log and log-file rotation.

The servers reach all of it through ``FrameServer``'s observer hook (pyfdfs.net.server)
and a few lines of wiring in ``tracker/app.py`` and ``storage/app.py``."""
