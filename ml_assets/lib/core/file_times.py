"""File modification times as change tokens, and when they cannot be trusted yet."""

#: A file or directory changed this recently (ns) may change again within the same mtime tick
#: (an mtime has the resolution of a clock tick), so its mtime is not trusted as a change
#: token until it is older (git's "racy" index check).
RACY_NS = 1_000_000_000


def settled(mtime_ns: int, now_ns: int) -> bool:
    """Whether an mtime is old enough that any later change will show as a different one.

    Parameters
    ----------
    mtime_ns, now_ns : int
        ``st_mtime_ns`` of the file and ``time.time_ns()``, both in nanoseconds.
    """
    return now_ns - mtime_ns >= RACY_NS
