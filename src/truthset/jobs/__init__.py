"""Background work: the job runner and the registry of job kinds.

Jobs are rows written by services in the transaction of the change that causes them
(:func:`truthset.services.jobs.enqueue`); a :class:`Runner` claims them, runs the handler registered
for their kind (:func:`register`, or the ``truthset.jobs`` entry-point group) and records the
outcome. ``truthset worker`` runs one; ``truthset serve`` runs one in-process unless
``TRUTHSET_JOBS_IN_PROCESS=false``. See docs/jobs.md.
"""

from truthset.jobs._registry import ENTRY_POINT_GROUP, Handler, handler_for, kinds, register, unregister
from truthset.jobs._runner import Runner, runner_for

__all__ = ["ENTRY_POINT_GROUP", "Handler", "Runner", "handler_for", "kinds", "register", "runner_for", "unregister"]
