"""``pyfdfs bench``: a load generator for any FastDFS-protocol cluster.

It speaks raw frames over asyncio (uvloop when installed) rather than going through
:mod:`pyfdfs.client`, so that the instrument costs as little CPU as possible, yet it makes
exactly the round trips a FastDFS client makes (protocol.md §7.14): 101 then 11 to upload,
102 then 14 to download, 103 then 12 to delete. It therefore measures a C FastDFS cluster
just as well as a pyfdfs one.

Layout: ``wire`` (one framed connection), ``operations`` (the round trips of one worker),
``runner`` (timed loops, several processes), ``stats`` (merging and percentiles),
``cpu`` (server CPU from /proc), ``baseline`` (a do-nothing server to compare with),
``report`` (tables) and ``command`` (the click command).
"""
