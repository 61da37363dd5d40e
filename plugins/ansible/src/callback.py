# drover's stdout callback for ansible-playbook: a readable line per play, task and
# host result on stdout (which drover streams to the node's log), and one JSON object
# per event, one per line, in the file named by $DROVER_ANSIBLE_EVENTS (which the
# ansible driver reads to make the node's outputs and report). Loading it also makes
# tasks on local connections run in the node's workspace (_run_local_modules_here).
from __future__ import annotations

import json
import os
import sys

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: drover
type: stdout
short_description: readable lines on stdout and JSON events for drover
description:
  - One line per play, task and host result on stdout.
  - One JSON object per event in the file named by DROVER_ANSIBLE_EVENTS.
"""

def _run_local_modules_here():
    """Run the modules of local connections in ansible-playbook's own working directory
    (the node's workspace), not in the playbook's folder.

    For the local connection, ansible sets the connection's `cwd` to the playbook's folder
    before every command (ActionBase._low_level_execute_command), so `dest: ./out.txt`
    would mean the playbook's folder, which the sandbox keeps read-only. Pinning `cwd` on
    the class (this module is imported before any worker forks) makes relative paths mean
    the workspace. Lookups of templates, files and roles do not depend on it: ansible
    finds them from the playbook's and roles' paths.
    """
    from ansible.plugins.connection import local

    here = os.getcwd().encode()
    local.Connection.cwd = property(lambda self: here, lambda self, value: None)


_run_local_modules_here()

SET_FACT = ("set_fact", "ansible.builtin.set_fact", "ansible.legacy.set_fact")
MAX_MSG = 4000


def _result(result):
    # `result` is the 2.19+ name; `_result` works on every version.
    try:
        return result.result
    except AttributeError:
        return result._result


def _message(res):
    """The text that says what happened: msg, else stderr, else the exception."""
    parts = []
    msg = res.get("msg")
    if msg:
        parts.append(msg if isinstance(msg, str) else json.dumps(msg, default=str))
    stderr = res.get("stderr")
    if isinstance(stderr, str) and stderr.strip() and stderr.strip() not in parts:
        parts.append(stderr.strip())
    if not parts and res.get("exception"):
        parts.append(str(res["exception"]).strip().splitlines()[-1])
    text = "; ".join(parts)
    return text[:MAX_MSG]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "drover"

    def __init__(self):
        super().__init__()
        self._events = open(os.environ["DROVER_ANSIBLE_EVENTS"], "a", encoding="utf-8")
        self._play = ""

    def _emit(self, event, **fields):
        fields["event"] = event
        self._events.write(json.dumps(fields, default=str, sort_keys=True) + "\n")
        self._events.flush()

    def _say(self, text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()
        self._emit("play_start", play=self._play)
        self._say(f"PLAY [{self._play}]")

    def _task_start(self, task, handler):
        name = task.get_name().strip()
        self._emit("task_start", play=self._play, task=name, handler=handler)
        self._say(f"{'RUNNING HANDLER' if handler else 'TASK'} [{name}]")

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start(task, False)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_start(task, True)

    def _host_result(self, result, status, ignored=False):
        res = _result(result)
        host = result._host.get_name()
        task = result._task.get_name().strip()
        fields = dict(
            play=self._play,
            task=task,
            host=host,
            status=status,
            changed=bool(res.get("changed", False)),
            msg=_message(res),
        )
        if ignored:
            fields["ignored"] = True
        if status in ("ok", "changed") and result._task.action in SET_FACT:
            facts = res.get("ansible_facts")
            if isinstance(facts, dict):
                fields["facts"] = facts
        self._emit("result", **fields)
        line = f"{status}: [{host}] {task}"
        if fields["msg"] and status in ("failed", "unreachable"):
            line += f": {fields['msg']}"
        if ignored:
            line += " (ignored)"
        self._say(line)

    def v2_runner_on_ok(self, result):
        changed = bool(_result(result).get("changed", False))
        self._host_result(result, "changed" if changed else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._host_result(result, "failed", ignored=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._host_result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._host_result(result, "unreachable")

    def v2_playbook_on_no_hosts_matched(self):
        self._emit("no_hosts_matched", play=self._play)
        self._say("skipping: no hosts matched")

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed.keys()):
            hosts[host] = stats.summarize(host)
        self._emit("stats", hosts=hosts, custom=stats.custom)
        self._say("PLAY RECAP")
        for host, counts in hosts.items():
            summary = " ".join(f"{key}={counts[key]}" for key in sorted(counts))
            self._say(f"{host}: {summary}")
