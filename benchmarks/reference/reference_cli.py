"""What the reference scripts share: their argument type, the CPU's name, and running a command that prints JSON.

Imported by the scripts beside it (Python puts a script's own folder first on sys.path).
"""
import argparse
import platform
import json
import os
import subprocess
import sys


def _whole_number(text, minimum, expected):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected {expected}, got "{text}"')
    if value < minimum:
        raise argparse.ArgumentTypeError(f'expected {expected}, got "{text}"')
    return value


def positive_int(text):
    return _whole_number(text, 1, "a positive whole number")


def non_negative_int(text):
    return _whole_number(text, 0, "a whole number >= 0")


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_json(command, caller):
    """Runs `command` and returns the last JSON object it printed; a failure ends `caller` with its last line."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    name = os.path.basename(command[1]) if len(command) > 1 else command[0]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"{caller}: {name} failed: {last}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"{caller}: {name} printed no JSON")
    return json.loads(lines[-1])
