#!/usr/bin/python3
"""regain against PyTorch and ONNX Runtime, side by side (issue 3; issue 8
for int8 with --int8).

    bench/compare.py [--rounds 3] [--regain build/regain] [--work SPEC ...]
                     [--tools regain,pytorch,onnxruntime] [--quick] [--out DIR]
    bench/compare.py --int8 [--rounds 3] ...   # issue 8's table

Int8 works (WORK int8, e.g. --work int8:mbv2-tiny:1:1) run four tools: regain's
int8 runtime (`regain bench int8`), regain float (`regain bench infer`, the
same batch and threads), PyTorch int8 (bench/peers/bench_torch_int8.py) and
ONNX Runtime on the static QDQ model (bench_ort.js on bench/out/int8/), the
peers' models made once by bench/peers/export_int8.py; ratios are regain
int8 / each other tool.

For each work (default: the issue's table) the tools run one after the other,
never at the same time, alternating round by round: regain, PyTorch, ONNX
Runtime, regain, PyTorch, ... so that drift on the machine hits every tool
alike. Each child is one benchmark process that prints, as its last stdout
line, the project's JSON result line (tool, work, model, batch, threads,
images_per_s, latency_ms, windows, peak_rss_mib); this script also measures
each child's peak resident memory itself (wait4's ru_maxrss), so every tool's
memory is counted the same way.

Ratios are regain / peer images/s of the same round (adjacent runs), with
min / median / max over rounds; a target is met when the median ratio
reaches it. Output: a Markdown table on stdout and in OUT/table.md, every
run's result in OUT/raw.json (rewritten after each run, so a killed
comparison keeps what it measured) and each child's output in OUT/logs/.

Stdlib only; run it with any Python 3.9+. The peers need /usr/bin/python3 with
Debian's python3-torch and `npm install --ignore-scripts` in bench/peers
(see bench/README.md).
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
PEERS = os.path.join(BENCH, "peers")
ONNX_DIR = os.path.join(BENCH, "out", "onnx")
MODELS = ("mbv2-tiny", "resnet20", "resnet20-w2")
INT8_DIR = os.path.join(BENCH, "out", "int8")
TOOLS = ("regain", "regain_float", "pytorch", "onnxruntime")
TOOL_NAMES = {"regain": "regain", "regain_float": "regain float", "pytorch": "PyTorch", "onnxruntime": "ONNX Runtime"}
# regain_float takes part in int8 works only (it is asked for with regain)
INT8_TOOL_NAMES = {"regain": "regain int8", "regain_float": "regain float", "pytorch": "PyTorch int8",
                   "onnxruntime": "ONNX Runtime int8"}
MALLOC_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# The default regain command line: the same timed windows of the same number
# of steps as the peers (the median of windows), and the same warm-up.
REGAIN_ARGS = ("bench {work} {model} --batch {batch} --threads {threads} "
               "--steps {windows} --window {steps} --warmup {warmup} --json")
# int8 works: the same windows through the int8 runtime
REGAIN_INT8_ARGS = ("bench int8 {model} --batch {batch} --threads {threads} "
                    "--steps {windows} --window {steps} --warmup {warmup} --requant {requant} --json")

# The issue's table: (work, model, batch, threads, steps per window). Steps
# per window are sized so that one window of the slowest tool lasts about a
# second on the project's 2-core machine.
DEFAULT_WORKS = (
    ("train", "mbv2-tiny", 128, 2, 8),
    ("train", "resnet20", 128, 2, 8),
    ("train", "resnet20-w2", 128, 2, 3),
    ("infer", "mbv2-tiny", 1, 1, 1000),
    ("infer", "mbv2-tiny", 256, 2, 10),
)

# Issue 8's table (--int8).
INT8_WORKS = (
    ("int8", "mbv2-tiny", 1, 1, 1000),
    ("int8", "mbv2-tiny", 256, 2, 10),
)

# Issue 3's targets. kind "speed": median over rounds of regain/peer images/s
# at least `ratio`; kind "rss": regain's peak RSS (median over rounds) at most
# the peer's.
TARGETS = (
    dict(key=("train", "mbv2-tiny", 128, 2), peer="pytorch", kind="speed", ratio=3.0),
    dict(key=("train", "mbv2-tiny", 128, 2), peer="pytorch", kind="rss"),
    dict(key=("train", "resnet20", 128, 2), peer="pytorch", kind="speed", ratio=1.2),
    dict(key=("train", "resnet20-w2", 128, 2), peer="pytorch", kind="speed", ratio=1.1),
    dict(key=("infer", "mbv2-tiny", 1, 1), peer="onnxruntime", kind="speed", ratio=1.0),
    dict(key=("infer", "mbv2-tiny", 256, 2), peer="onnxruntime", kind="speed", ratio=1.2),
    # issue 8: int8 at least 1.5x ONNX Runtime's int8 at batch 1, 1.5x the
    # best peer at batch 256, and at least 2x regain float at both
    dict(key=("int8", "mbv2-tiny", 1, 1), peer="onnxruntime", kind="speed", ratio=1.5),
    dict(key=("int8", "mbv2-tiny", 1, 1), peer="regain_float", kind="speed", ratio=2.0),
    dict(key=("int8", "mbv2-tiny", 256, 2), peer="pytorch", kind="speed", ratio=1.5),
    dict(key=("int8", "mbv2-tiny", 256, 2), peer="onnxruntime", kind="speed", ratio=1.5),
    dict(key=("int8", "mbv2-tiny", 256, 2), peer="regain_float", kind="speed", ratio=2.0),
)

RESULT_KEYS = ("tool", "work", "model", "batch", "threads", "images_per_s",
               "latency_ms", "windows")


class Work:
    def __init__(self, work, model, batch, threads, steps):
        self.work, self.model, self.batch, self.threads, self.steps = work, model, batch, threads, steps

    @property
    def key(self):
        return (self.work, self.model, self.batch, self.threads)

    def label(self):
        return f"{self.work} {self.model}, batch {self.batch}, {self.threads} thread{'s' if self.threads > 1 else ''}"

    def tools(self, wanted):
        # ONNX Runtime has no training: it takes part in inference only;
        # regain float stands beside regain int8 in int8 works.
        if self.work == "int8":
            return [t for t in TOOLS if t in wanted or (t == "regain_float" and "regain" in wanted)]
        return [t for t in TOOLS if t in wanted and t != "regain_float"
                and not (t == "onnxruntime" and self.work == "train")]


def parse_work(spec):
    """WORK:MODEL:BATCH:THREADS[:STEPS], e.g. train:mbv2-tiny:128:2."""
    parts = spec.split(":")
    if len(parts) not in (4, 5):
        raise argparse.ArgumentTypeError(
            f"work {spec!r}: expected WORK:MODEL:BATCH:THREADS[:STEPS], e.g. train:mbv2-tiny:128:2")
    work, model = parts[0], parts[1]
    if work not in ("train", "infer", "int8"):
        raise argparse.ArgumentTypeError(f"work {spec!r}: unknown work {work!r}; expected train, infer or int8")
    if work == "int8" and model != "mbv2-tiny":
        raise argparse.ArgumentTypeError(f"work {spec!r}: the int8 peers exist for mbv2-tiny only")
    if model not in MODELS:
        raise argparse.ArgumentTypeError(f"work {spec!r}: unknown model {model!r}; expected one of {', '.join(MODELS)}")
    nums = []
    for name, text in zip(("batch", "threads", "steps"), parts[2:]):
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f"work {spec!r}: {name} must be a whole number >= 1, got {text!r}")
        nums.append(int(text))
    batch, threads = nums[0], nums[1]
    steps = nums[2] if len(nums) == 3 else default_steps(work, model, batch)
    return Work(work, model, batch, threads, steps)


def default_steps(work, model, batch):
    for w in DEFAULT_WORKS + INT8_WORKS:
        if w[:3] == (work, model, batch):
            return w[4]
    # Roughly a second per window at PyTorch's speed on 2 cores.
    per_image = {"mbv2-tiny": 1.0, "resnet20": 1.0, "resnet20-w2": 3.2}[model] * (3 if work == "train" else 1)
    return max(2, int(1000 / (per_image * batch)))


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--rounds", type=int, default=3, help="rounds of alternating runs (default 3)")
    ap.add_argument("--work", action="append", type=parse_work, metavar="SPEC",
                    help="WORK:MODEL:BATCH:THREADS[:STEPS] (repeatable; default: the issue's five works)")
    ap.add_argument("--tools", default="regain,pytorch,onnxruntime",
                    help="comma-separated subset of regain,pytorch,onnxruntime (default all)")
    ap.add_argument("--regain", default=os.path.join(REPO, "build", "regain"),
                    help="the regain command (default build/regain; may hold a wrapper, e.g. 'taskset -c 0,1 build/regain')")
    ap.add_argument("--regain-args", default=REGAIN_ARGS,
                    help=f"arguments after the regain command; placeholders {{work}} {{model}} {{batch}} {{threads}} "
                         f"{{steps}} (per window) {{windows}} {{warmup}} {{total_steps}} (default: '{REGAIN_ARGS}')")
    ap.add_argument("--python", default="/usr/bin/python3", help="Python with torch (default /usr/bin/python3)")
    ap.add_argument("--node", default="node", help="node executable (default node)")
    ap.add_argument("--windows", type=int, default=5, help="timed windows per run (default 5)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="warm-up steps per run (default: a quarter of a window, at least 3)")
    ap.add_argument("--torch-memory-format", choices=("contiguous", "channels_last"), default="contiguous",
                    help="PyTorch's tensor layout (default contiguous; use whichever is faster on the machine)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds before one child is killed (default 900)")
    ap.add_argument("--int8", action="store_true",
                    help="issue 8's table: int8 mbv2-tiny at batch 1 on 1 thread and batch 256 on 2 threads "
                         "(regain int8, regain float, PyTorch int8, ONNX Runtime int8)")
    ap.add_argument("--requant", choices=("fixed", "fp32"), default="fixed",
                    help="regain int8's requantization (regain quantize --requant): fixed-point multipliers "
                         "(default, TFLite's reference rule) or fp32 scales (the peers' rule)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke check: 1 round, 2 windows of a tenth of the steps, 1 warm-up step")
    ap.add_argument("--out", default=os.path.join(BENCH, "out", "compare"), help="output folder (default bench/out/compare)")
    args = ap.parse_args(argv)

    args.works = args.work or [Work(*w) for w in (INT8_WORKS if args.int8 else DEFAULT_WORKS)]
    args.tool_set = [t.strip() for t in args.tools.split(",") if t.strip()]
    for t in args.tool_set:
        if t not in TOOLS or t == "regain_float":
            ap.error(f"--tools: unknown tool {t!r}; expected a subset of regain,pytorch,onnxruntime")
    if not args.tool_set:
        ap.error("--tools: no tool named")
    if args.quick:
        args.rounds, args.windows, args.warmup = 1, 2, 1
        for w in args.works:
            w.steps = max(1, w.steps // 10)
    if args.rounds < 1 or args.windows < 1:
        ap.error("--rounds and --windows must be at least 1")
    if args.warmup is not None and args.warmup < 0:
        ap.error("--warmup must be at least 0")
    args.regain_cmd = shlex.split(args.regain)
    if not args.regain_cmd:
        ap.error("--regain: empty command")
    try:
        args.regain_args.format(**placeholders(args.works[0], args))
    except (KeyError, IndexError, ValueError) as e:
        ap.error(f"--regain-args: bad placeholder in {args.regain_args!r} ({e})")
    return args


def warmup_steps(work, args):
    return args.warmup if args.warmup is not None else max(3, work.steps // 4)


def placeholders(work, args):
    return dict(work=work.work, model=work.model, batch=work.batch, threads=work.threads,
                steps=work.steps, windows=args.windows, warmup=warmup_steps(work, args),
                total_steps=work.steps * args.windows, requant=getattr(args, "requant", "fixed"))


def clean_env(**extra):
    """The caller's environment without thread or malloc settings it may
    carry, plus `extra`: each tool runs with exactly the settings named here."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS + ("GLIBC_TUNABLES",)}
    env.update(extra)
    return env


def command(tool, work, args):
    """(argv, env) of one benchmark child."""
    if tool in ("regain", "regain_float"):
        tmpl = REGAIN_INT8_ARGS if work.work == "int8" and tool == "regain" else args.regain_args
        ph = placeholders(work, args)
        if work.work == "int8":
            ph["work"] = "infer"  # regain float's side of an int8 work
        return args.regain_cmd + shlex.split(tmpl.format(**ph)), clean_env()
    int8 = work.work == "int8"
    common = [work.work if not (int8 and tool == "onnxruntime") else "infer", work.model,
              "--batch", str(work.batch), "--threads", str(work.threads),
              "--steps", str(work.steps), "--windows", str(args.windows),
              "--warmup", str(warmup_steps(work, args))]
    if tool == "pytorch":
        # PyTorch at its best: BLAS/OpenMP pools limited to the threads asked
        # for, glibc malloc keeping its large blocks (issue 3).
        threads = {v: str(work.threads) for v in THREAD_VARS}
        env = clean_env(GLIBC_TUNABLES=MALLOC_TUNABLES, **threads)
        if args.blas_coretype:
            env["OPENBLAS_CORETYPE"] = args.blas_coretype
        if int8:
            return [args.python, os.path.join(PEERS, "bench_torch_int8.py")] + common + ["--model-dir", INT8_DIR], env
        return ([args.python, os.path.join(PEERS, "bench_torch.py")] + common
                + ["--memory-format", args.torch_memory_format], env)
    return ([args.node, os.path.join(PEERS, "bench_ort.js")] + common
            + ["--onnx-dir", INT8_DIR if int8 else ONNX_DIR], clean_env())


def run_child(argv, env, log_path, timeout):
    """Runs one child; returns (exit status text or None, stdout text,
    peak RSS MiB from wait4, wall seconds)."""
    out_path = log_path + ".stdout"
    t0 = time.monotonic()
    with open(out_path, "w+b") as out, open(log_path, "wb") as err:
        err.write(("$ " + " ".join(shlex.quote(a) for a in argv) + "\n").encode())
        err.flush()
        try:
            # Its own process group, so a timeout or Ctrl-C ends wrappers'
            # children too (a shell script around regain, node's workers).
            p = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
        except OSError as e:
            return f"cannot start {argv[0]}: {e.strerror}", "", None, 0.0
        killed = []

        def kill():
            killed.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            # wait4 rather than Popen.wait: it hands back the child's rusage.
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            kill()
            os.wait4(p.pid, 0)
            p.returncode = -signal.SIGKILL
            raise
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        wall = time.monotonic() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
        err.write(b"--- stdout ---\n" + text.encode())
    os.remove(out_path)
    rss = ru.ru_maxrss / 1024.0  # KiB on Linux
    if killed:
        return f"killed after {timeout:.0f} s (--timeout)", text, rss, wall
    if p.returncode != 0:
        why = (f"killed by signal {signal.Signals(-p.returncode).name}" if p.returncode < 0
               else f"exit status {p.returncode}")
        return why, text, rss, wall
    return None, text, rss, wall


def parse_result(text, tool, work):
    """The last stdout line as the protocol's JSON object, checked against
    what was asked. Returns (result, error)."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return None, "printed nothing on stdout (expected a JSON result line last)"
    try:
        r = json.loads(lines[-1])
    except ValueError as e:
        return None, f"last stdout line is not JSON ({e}): {lines[-1][:200]!r}"
    if not isinstance(r, dict):
        return None, f"last stdout line is JSON but not an object: {lines[-1][:200]!r}"
    missing = [k for k in RESULT_KEYS if k not in r]
    if missing:
        return None, f"result line lacks {', '.join(missing)}: {lines[-1][:200]!r}"
    # what each tool's line says: regain float and ONNX Runtime run their
    # plain inference in an int8 work (ORT on the QDQ model)
    said = work.work
    if work.work == "int8" and tool in ("regain_float", "onnxruntime"):
        said = "infer"
    want = dict(tool="regain" if tool == "regain_float" else tool, work=said, model=work.model,
                batch=work.batch, threads=work.threads)
    for k, v in want.items():
        if r[k] != v:
            return None, f"result line says {k} {r[k]!r}, but {v!r} was asked for"
    for k in ("images_per_s", "latency_ms"):
        v = r[k]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            return None, f"result line: {k} must be a positive number, got {v!r}"
    return r, None


def write_atomic(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def ensure_onnx(works, args):
    """Exports the models the ONNX Runtime runs need when they are missing or
    older than the PyTorch definitions."""
    if "onnxruntime" not in args.tool_set:
        return
    need = sorted({w.model for w in works if w.work == "infer"})
    sources = [os.path.join(PEERS, f) for f in ("models.py", "export_onnx.py")]
    newest = max(os.path.getmtime(s) for s in sources)
    stale = [m for m in need
             if not os.path.exists(os.path.join(ONNX_DIR, f"{m}.onnx"))
             or os.path.getmtime(os.path.join(ONNX_DIR, f"{m}.onnx")) < newest]
    if not stale:
        return
    progress(f"exporting {', '.join(stale)} to ONNX ({os.path.relpath(ONNX_DIR, REPO)})")
    r = subprocess.run([args.python, os.path.join(PEERS, "export_onnx.py"), "--out", ONNX_DIR] + stale,
                       env=clean_env(), stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit(f"compare.py: exporting {', '.join(stale)} to ONNX failed (exit status {r.returncode})")


def ensure_int8(works, args):
    """Quantizes the int8 peers' models (export_int8.py) when missing or
    older than their sources."""
    if not any(w.work == "int8" for w in works) or not ({"pytorch", "onnxruntime"} & set(args.tool_set)):
        return
    sources = [os.path.join(PEERS, f) for f in ("models.py", "export_int8.py")]
    newest = max(os.path.getmtime(s) for s in sources)
    files = [os.path.join(INT8_DIR, f) for f in ("mbv2-tiny.onnx", "mbv2-tiny-torch.pt")]
    if all(os.path.exists(f) and os.path.getmtime(f) >= newest for f in files):
        return
    progress(f"quantizing the int8 peers' models ({os.path.relpath(INT8_DIR, REPO)})")
    r = subprocess.run([args.python, os.path.join(PEERS, "export_int8.py"), "--out", INT8_DIR, "--node", args.node],
                       env=clean_env(), stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit(f"compare.py: export_int8.py failed (exit status {r.returncode})")


def openblas_coretype(args):
    """The OPENBLAS_CORETYPE PyTorch runs with: the caller's, else the kernel
    set regain's OpenBLAS runs. Debian's OpenBLAS falls back to SSE3 kernels
    on CPUs newer than its release and regain corrects that for itself
    (regain/cpu.h). PyTorch's convolutions run in oneDNN, which picks its
    kernels from the CPU's features, but its linear layers use the same
    OpenBLAS, so it gets the same kernels (its mbv2-tiny training step
    measured the same either way on an Emerald Rapids machine: 0.98x in 4
    alternating pairs)."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return os.environ["OPENBLAS_CORETYPE"]
    if "regain" not in args.tool_set:
        return None
    argv = args.regain_cmd + ["bench", "infer", "mbv2-tiny", "--batch", "1", "--threads", "1",
                              "--steps", "1", "--window", "1", "--warmup", "0", "--json"]
    r = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), stdin=subprocess.DEVNULL)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1]).get("blas_core")
    except (ValueError, IndexError):
        return None


def preflight(args):
    """Clear errors before minutes of runs, not after."""
    problems = []
    if "regain" in args.tool_set:
        exe = args.regain_cmd[0]
        found = exe if os.sep in exe else shutil.which(exe)
        if not found or not os.access(found, os.X_OK):
            problems.append(f"regain: {exe}: no such executable; build it (scripts/build) or pass --regain PATH")
    if "pytorch" in args.tool_set:
        r = subprocess.run([args.python, "-c", "import torch"], capture_output=True, text=True) \
            if shutil.which(args.python) else None
        if r is None or r.returncode != 0:
            problems.append(f"pytorch: {args.python} cannot import torch; apt-get install python3-torch "
                            "(or pass --python, or leave pytorch out of --tools)")
    if any(w.work == "int8" for w in args.works) and ({"pytorch", "onnxruntime"} & set(args.tool_set)):
        r = subprocess.run([args.python, "-c", "import onnx"], capture_output=True, text=True) \
            if shutil.which(args.python) else None
        if r is None or r.returncode != 0:
            problems.append(f"int8 peers: {args.python} cannot import onnx; apt-get install python3-onnx")
    if "onnxruntime" in args.tool_set and any(w.work in ("infer", "int8") for w in args.works):
        if not shutil.which(args.node):
            problems.append(f"onnxruntime: {args.node}: node not found (or leave onnxruntime out of --tools)")
        if not os.path.isdir(os.path.join(PEERS, "node_modules", "onnxruntime-node")):
            problems.append("onnxruntime: onnxruntime-node is not installed; run: "
                            "cd bench/peers && npm install --ignore-scripts")
    if problems:
        sys.exit("compare.py: cannot run the comparison:\n  " + "\n  ".join(problems))


def versions(args):
    v = {}
    if "pytorch" in args.tool_set:
        r = subprocess.run([args.python, "-c", "import torch; print(torch.__version__)"],
                           capture_output=True, text=True)
        v["pytorch"] = r.stdout.strip() if r.returncode == 0 else "?"
    if "onnxruntime" in args.tool_set:
        try:
            with open(os.path.join(PEERS, "node_modules", "onnxruntime-node", "package.json")) as f:
                v["onnxruntime"] = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            v["onnxruntime"] = "?"
    return v


def machine():
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        commit = "?"
    return dict(cpu=cpu, cpus=os.cpu_count(), commit=commit,
                date=datetime.datetime.now().isoformat(timespec="seconds"))


def show_path(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def progress(msg):
    print(msg, flush=True)


def fmt_rate(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def fmt_dur(s):
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


# ------------------------------------------------------------- the table ---

def summarize(works, runs, args):
    """Per work: per tool median images/s, latency, RSS; per peer the ratios."""
    out = []
    for w in works:
        row = dict(work=w, tools={}, ratios={})
        by_tool = {}
        for t in w.tools(args.tool_set):
            ok = [r for r in runs if r["key"] == list(w.key) and r["tool"] == t and r["result"]]
            by_tool[t] = {r["round"]: r for r in ok}
            if ok:
                row["tools"][t] = dict(
                    images_per_s=statistics.median(r["result"]["images_per_s"] for r in ok),
                    latency_ms=statistics.median(r["result"]["latency_ms"] for r in ok),
                    rss_mib=statistics.median(r["rss_mib"] for r in ok),
                    n=len(ok))
        for peer in ("regain_float", "pytorch", "onnxruntime"):
            if "regain" not in by_tool or peer not in by_tool:
                continue
            rs = [by_tool["regain"][k]["result"]["images_per_s"] / by_tool[peer][k]["result"]["images_per_s"]
                  for k in sorted(by_tool["regain"]) if k in by_tool[peer]]
            if rs:
                row["ratios"][peer] = dict(min=min(rs), median=statistics.median(rs), max=max(rs), n=len(rs))
        out.append(row)
    return out


def speed_cell(w, s):
    if s is None:
        return "-"
    if w.batch == 1:
        return f"{s['latency_ms']:.3f} ms ({fmt_rate(s['images_per_s'])} images/s)"
    return f"{fmt_rate(s['images_per_s'])} images/s"


def ratio_cell(r):
    if r is None:
        return "-"
    if r["n"] == 1:
        return f"{r['median']:.2f}x"
    return f"{r['median']:.2f}x ({r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f})"


def target_cell(row):
    """Issue 3's targets for this row's work, each with met / not met."""
    parts = []
    for t in TARGETS:
        if t["key"] != row["work"].key:
            continue
        peer = (INT8_TOOL_NAMES if row["work"].work == "int8" else TOOL_NAMES)[t["peer"]]
        if t["kind"] == "speed":
            goal = f"at least {t['ratio']:.1f}x {peer}"
            r = row["ratios"].get(t["peer"])
            met = None if r is None else r["median"] >= t["ratio"]
        else:
            goal = f"peak RSS at most {peer}'s"
            a, b = row["tools"].get("regain"), row["tools"].get(t["peer"])
            met = None if a is None or b is None else a["rss_mib"] <= b["rss_mib"]
        parts.append(f"{goal}: " + ("not measured" if met is None else "met" if met else "**not met**"))
    return "; ".join(parts) if parts else "-"


def kernels_line(runs, pytorch_coretype):
    """What regain's result lines say about its kernels: its instruction set
    and the kernels OpenBLAS chose (a fallback to SSE3 on a CPU newer than
    OpenBLAS's release cost mbv2-tiny's training a third of its images/s on
    Emerald Rapids; docs/performance.md)."""
    seen = sorted({(r["result"].get("isa", "?"), r["result"].get("blas_core"))
                   for r in runs if r["tool"] in ("regain", "regain_float") and r["result"]},
                  key=lambda s: (s[0], s[1] or ""))
    parts = []
    if seen:  # the int8 runtime calls no BLAS: its lines name no core
        parts.append("regain's kernels: " + "; ".join(isa + (f", OpenBLAS {core}" if core else "")
                                                       for isa, core in seen))
    if pytorch_coretype:
        parts.append(f"PyTorch ran with OPENBLAS_CORETYPE={pytorch_coretype}")
    return "; ".join(parts) + "." if parts else None


def render(summary, args, meta, failures):
    vers = meta["versions"]
    m = meta["machine"]
    lines = [
        f"# regain vs peers ({m['date']}, commit {m['commit']})",
        "",
        f"{m['cpu']}, {m['cpus']} CPUs; load average {meta['load_before']} before, "
        f"{meta['load_after']} after; {args.rounds} round{'s' if args.rounds > 1 else ''} "
        f"of alternating runs, {args.windows} timed windows each; wall {fmt_dur(meta['wall_s'])}"
        + ("; **--quick smoke check, not a measurement**" if args.quick else "") + ".",
        "Speeds are medians over rounds (each run reports its median window); ratios are regain / peer "
        "images/s of the same round, median (min / median / max); a target is met when the median "
        "ratio reaches it. Peak RSS is measured by this script (wait4), median over rounds.",
    ]
    if meta.get("kernels"):
        lines.insert(3, meta["kernels"])
    # float works and int8 works have different columns: one table each
    for int8 in (False, True):
        rows = [r for r in summary if (r["work"].work == "int8") == int8]
        if not rows:
            continue
        names = INT8_TOOL_NAMES if int8 else TOOL_NAMES
        label = {t: names[t] + (f" {vers[t]}" if vers.get(t) else "") for t in TOOLS}
        show = [t for t in TOOLS if any(t in r["work"].tools(args.tool_set) for r in rows)]
        peers = [t for t in ("regain_float", "pytorch", "onnxruntime") if t in show and "regain" in show]
        issue = "issue 8" if int8 else "issue 3"
        head = ["work"] + [label[t] for t in show] + [f"{names['regain']} / {names[p]}" for p in peers] \
            + ["peak RSS MiB (" + " / ".join(names[t] for t in show) + ")", f"target ({issue})"]
        lines += ["", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for row in rows:
            w = row["work"]
            cells = [w.label()]
            for t in show:
                cells.append(speed_cell(w, row["tools"].get(t)) if t in w.tools(args.tool_set) else "(does not train)")
            for p in peers:
                cells.append(ratio_cell(row["ratios"].get(p)))
            cells.append(" / ".join(f"{row['tools'][t]['rss_mib']:,.0f}" if t in row["tools"] else "-" for t in show))
            cells.append(target_cell(row))
            lines.append("| " + " | ".join(cells) + " |")
    if failures:
        lines += ["", "Failed runs:"]
        lines += [f"- {f}" for f in failures]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main ---

def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.requant == "fp32":  # the tables say which rule regain int8 ran
        INT8_TOOL_NAMES["regain"] = "regain int8 (fp32 requant)"
    preflight(args)
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    ensure_onnx(args.works, args)
    ensure_int8(args.works, args)
    args.blas_coretype = openblas_coretype(args)
    meta = dict(machine=machine(), versions=versions(args), load_before=fmt_load(),
                regain=args.regain_cmd, regain_args=args.regain_args, quick=args.quick,
                rounds=args.rounds, windows=args.windows, pytorch_openblas_coretype=args.blas_coretype)
    load1 = os.getloadavg()[0]
    if load1 > 0.5:
        progress(f"warning: load average {load1:.1f} before the start: something else is running, "
                 "and the figures will show it")
    plan = [(w, rnd, t) for w in args.works for rnd in range(1, args.rounds + 1) for t in w.tools(args.tool_set)]
    progress(f"{len(plan)} runs: {len(args.works)} works x {args.rounds} rounds, tools "
             f"{', '.join(args.tool_set)}; results in {show_path(args.out)}")
    runs, failures = [], []
    t_start = time.monotonic()
    raw_path = os.path.join(args.out, "raw.json")
    for i, (w, rnd, tool) in enumerate(plan, start=1):
        argv, env = command(tool, w, args)
        tag = f"{w.work}-{w.model}-b{w.batch}-t{w.threads}-r{rnd}-{tool}"
        log_path = os.path.join(args.out, "logs", tag + ".log")
        eta = ""
        if i > 1:
            done = time.monotonic() - t_start
            eta = f", about {fmt_dur(done / (i - 1) * (len(plan) - i + 1))} left"
        names = INT8_TOOL_NAMES if w.work == "int8" else TOOL_NAMES
        progress(f"[{i}/{len(plan)}] {w.label()}, round {rnd}/{args.rounds}: {names[tool]}{eta}")
        err, text, rss, wall = run_child(argv, env, log_path, args.timeout)
        result = None
        if err is None:
            result, err = parse_result(text, tool, w)
        rec = dict(key=list(w.key), work=w.work, model=w.model, batch=w.batch, threads=w.threads,
                   steps=w.steps, round=rnd, tool=tool, argv=argv, wall_s=round(wall, 3),
                   rss_mib=None if rss is None else round(rss, 1), result=result, error=err,
                   log=show_path(log_path))
        runs.append(rec)
        if err:
            failures.append(f"{w.label()}, round {rnd}, {names[tool]}: {err} ({rec['log']})")
            progress(f"    FAILED: {err}; log: {rec['log']}")
            tail = open(log_path, errors="replace").read().splitlines()[-5:]
            for line in tail:
                progress(f"    | {line}")
        else:
            lat = f", {result['latency_ms']:.3f} ms/batch" if w.work in ("infer", "int8") else ""
            progress(f"    {fmt_rate(result['images_per_s'])} images/s{lat}, peak RSS {rss:,.0f} MiB, {wall:.1f} s")
        write_atomic(raw_path, json.dumps(dict(meta=meta, runs=runs), indent=1) + "\n")

    meta["load_after"] = fmt_load()
    meta["wall_s"] = time.monotonic() - t_start
    meta["kernels"] = kernels_line(runs, args.blas_coretype)
    table = render(summarize(args.works, runs, args), args, meta, failures)
    write_atomic(raw_path, json.dumps(dict(meta=meta, runs=runs), indent=1) + "\n")
    write_atomic(os.path.join(args.out, "table.md"), table)
    print("\n" + table, end="", flush=True)
    progress(f"\nwritten: {show_path(os.path.join(args.out, 'table.md'))}, {show_path(raw_path)}")
    return 1 if failures else 0


def fmt_load():
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("\ncompare.py: interrupted; the runs finished so far are in OUT/raw.json")
