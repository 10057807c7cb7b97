"""Processes that die with their parent: a killed run takes its step and render processes along.

Dagster's multiprocess executor runs each step in a child of the run worker, and the report
batch renders in children of the step. SIGKILL of a parent does not reach its children: an
orphaned step went on to commit its partition and record a materialization after its run was
gone, and orphaned render workers went on writing files no row would ever record. On Linux a
process can ask the kernel to send it a signal when its parent dies (``PR_SET_PDEATHSIG``);
:func:`die_with_parent` asks for SIGKILL, so the orphan's open database transaction is rolled
back by the server and nothing it half-did is kept. Elsewhere it is a no-op (Kubernetes runs
steps in pods of their own, which the run launcher deletes).

No Dagster here: the shell calls it where a step starts (``WarehouseResource``) and the render
pool calls it in each worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent process dies.

    Returns True when armed (Linux), False where unsupported. If the parent is already gone
    (we were orphaned before arming), the process kills itself with ``sig`` at once: the
    parent that was to be watched cannot be watched any more.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if parent == 1 or os.getppid() != parent:  # orphaned already, before or while arming
        os.kill(os.getpid(), sig)
    return True


def is_child_process() -> bool:
    """True in a ``multiprocessing`` child (a Dagster step process, a render worker); False
    in a process started any other way (the run worker, a test, the CLI), which must not be
    tied to whoever started it."""
    return multiprocessing.parent_process() is not None


def step_dies_with_run() -> bool:
    """In a step process of the multiprocess executor: die with the run worker (see module
    doc). A no-op when the step runs in the run's own process (``execute_in_process``)."""
    return is_child_process() and die_with_parent()
