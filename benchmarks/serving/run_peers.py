"""Serve the same model.onnx with modelyard and its peers, one server at a time, and
drive each with the same `modelyard bench` command.

    .venv/bin/python benchmarks/serving/run_peers.py --bundle BUNDLE_DIR --run-dir RUN_DIR

For each peer: install its venv under /tmp/peers/<peer>/venv (skipped when present),
start its server alone on a free port, time process start -> first 200 on the infer
route, run `modelyard bench URL --model NAME -c 1,8,32 --duration 10s --shape 1,28,28
--json` (mlflow: bench_mlflow.py, the same load engine with its /invocations body),
sample RSS (VmRSS summed over the process tree) while under load, stop it, next.
Results: benchmarks/serving/results/<peer>.json, then a markdown table on stdout
and in benchmarks/serving/results/table.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
APPS = HERE / "apps"
RESULTS = HERE / "results"
PEERS = Path("/tmp/peers")
VENV_PY = REPO / ".venv" / "bin" / "python"
MODELYARD = REPO / ".venv" / "bin" / "modelyard"
sys.path.insert(0, str(HERE))

import contextlib

import install_peers

ORDER = [
    "modelyard",
    "mlserver",
    "bentoml",
    "litserve",
    "rayserve",
    "mlflow",
    "flask_torch",
    "starlette_ort",
]
NOTES = {
    "modelyard": "modelyard serve, 1 worker, defaults (max_batch_size 32, max_delay_ms 0, "
    "ORT threads not spinning, prediction log on)",
    "mlserver": "MLServer 1.7 custom ORT runtime, parallel_workers 0, "
    "adaptive batching max_batch_size 32 / max_batch_time 2 ms",
    "bentoml": "BentoML service, workers 1, batchable API max_batch_size 32, max_latency_ms 1000",
    "litserve": "LitServe, 1 API server + 1 inference worker, max_batch_size 32, "
    "batch_timeout 2 ms",
    "rayserve": "Ray Serve, 1 replica, @serve.batch max_batch_size 32 / 2 ms, "
    "max_ongoing_requests 128",
    "mlflow": "mlflow models serve --env-manager local -w 1 (ONNX flavor, no batching)",
    "flask_torch": "Flask (werkzeug threaded) + TorchScript of the same network, "
    "one forward per request",
    "starlette_ort": "Starlette + uvicorn 1 worker, session.run per request, no batching",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def venv(peer: str) -> Path:
    return PEERS / peer / "venv" / "bin"


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_rss_mb(root: int) -> float:
    total = 0
    for pid in tree_pids(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, tree_rss_mb(self.pid))


def load1() -> float:
    return os.getloadavg()[0]


def busy_share(seconds: float = 3.0) -> float:
    """Share of all CPU time that was busy over ``seconds`` (no server of ours running)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def busy_jiffies() -> int:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


def tree_jiffies(root: int) -> int:
    total = 0
    for pid in tree_pids(root):
        try:
            parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(parts[11]) + int(parts[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def wait_quiet(limit: float, max_wait: float) -> tuple[float, float]:
    """Poll every 30 s until the 1-minute load average is below ``limit``."""
    start = time.time()
    while load1() >= limit and time.time() - start < max_wait:
        print(f"  load {load1():.2f} >= {limit}; waiting", flush=True)
        time.sleep(30)
    return load1(), time.time() - start


def v2_body() -> bytes:
    sys.path.insert(0, str(REPO / "src"))
    from modelyard.bench.payloads import tensor_payload

    return tensor_payload("v2", (1, 28, 28)).body


def mlflow_body() -> bytes:
    import numpy as np

    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28), dtype=np.float32)
    return json.dumps({"inputs": {"input": x.tolist()}}, separators=(",", ":")).encode()


def post_ok(url: str, body: bytes) -> bool:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return 200 <= response.status < 300
    except Exception:
        return False


def prepare(
    peer: str, args: argparse.Namespace, port: int
) -> tuple[list[str], dict[str, str], Path, str, str]:
    """The command, env, cwd, model name and infer path for one peer."""
    onnx = str(Path(args.bundle) / "model.onnx")
    env = {**os.environ, "PEER_ONNX": onnx, "PYTHONPATH": str(APPS), "PYTHONUNBUFFERED": "1"}
    for key in ("VIRTUAL_ENV", "PYTHONHOME"):
        env.pop(key, None)
    if peer != "modelyard":  # mlflow execs `uvicorn` from PATH
        env["PATH"] = f"{venv(peer)}:{env.get('PATH', '')}"
    v2 = "/v2/models/mnist/infer"
    if peer == "modelyard":
        name = args.model_name
        env["MODELYARD_HOME"] = args.modelyard_home
        extra = args.modelyard_settings.split() if args.modelyard_settings else []
        return (
            [str(MODELYARD), "serve", args.bundle, "--port", str(port), *extra],
            env,
            REPO,
            name,
            f"/v2/models/{name}/infer",
        )
    if peer == "mlserver":
        root = PEERS / "mlserver" / "repo"
        model_dir = root / "mnist"
        model_dir.mkdir(parents=True, exist_ok=True)
        (root / "settings.json").write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "http_port": port,
                    "grpc_port": free_port(),
                    "metrics_port": free_port(),
                    # PEER_WORKERS: inference processes beside the HTTP one
                    "parallel_workers": int(os.environ.get("PEER_WORKERS", "0")),
                    "debug": False,
                }
            )
        )
        (model_dir / "model-settings.json").write_text(
            json.dumps(
                {
                    "name": "mnist",
                    "implementation": "mlserver_runtime.OnnxModel",
                    "max_batch_size": 32,
                    "max_batch_time": 0.002,
                }
            )
        )
        return ([str(venv(peer) / "mlserver"), "start", str(root)], env, root, "mnist", v2)
    if peer == "bentoml":
        env["BENTOML_HOME"] = str(PEERS / "bentoml" / "home")
        env["BENTOML_DO_NOT_TRACK"] = "true"
        return (
            [
                str(venv(peer) / "bentoml"),
                "serve",
                "bentoml_service:Mnist",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            APPS,
            "mnist",
            v2,
        )
    if peer == "mlflow":
        env["MLFLOW_TRACKING_URI"] = f"file://{PEERS / 'mlflow' / 'mlruns'}"
        return (
            [
                str(venv(peer) / "mlflow"),
                "models",
                "serve",
                "-m",
                str(PEERS / "mlflow" / "model"),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            env,
            PEERS / "mlflow",
            "mnist",
            "/invocations",
        )
    if peer == "flask_torch":
        env["PEER_TORCHSCRIPT"] = str(PEERS / "flask_torch" / "model.ts")
    if peer == "rayserve":
        env["RAY_USAGE_STATS_ENABLED"] = "0"
    script = {
        "litserve": "litserve_app.py",
        "rayserve": "rayserve_app.py",
        "flask_torch": "flask_torch_app.py",
        "starlette_ort": "starlette_ort_app.py",
    }[peer]
    return [str(venv(peer) / "python"), str(APPS / script), str(port)], env, APPS, "mnist", v2


def prepare_artifacts(peer: str, args: argparse.Namespace) -> None:
    onnx = str(Path(args.bundle) / "model.onnx")
    if peer == "flask_torch" and not (PEERS / "flask_torch" / "model.ts").exists():
        subprocess.run(
            [
                str(VENV_PY),
                str(HERE / "export_torchscript.py"),
                args.run_dir,
                str(PEERS / "flask_torch" / "model.ts"),
                onnx,
            ],
            check=True,
        )
    if peer == "mlflow" and not (PEERS / "mlflow" / "model" / "MLmodel").exists():
        subprocess.run(
            [
                str(venv("mlflow") / "python"),
                str(HERE / "save_mlflow_model.py"),
                onnx,
                str(PEERS / "mlflow" / "model"),
            ],
            check=True,
            cwd=PEERS / "mlflow",
        )


def stop(process: subprocess.Popen, peer: str) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    if peer == "rayserve":  # raylet/gcs of the session this script started
        subprocess.run([str(venv(peer) / "ray"), "stop", "--force"], capture_output=True)
    time.sleep(2)


def run_peer(peer: str, args: argparse.Namespace) -> dict:
    result: dict = {"peer": peer, "setup": NOTES[peer]}
    if peer != "modelyard":
        _, ok, _seconds, note = install_peers.install(peer)
        result["install"] = note
        if not ok:
            result["error"] = f"install {note}"
            return result
    try:
        prepare_artifacts(peer, args)
    except Exception as error:
        result["error"] = f"artifact preparation failed: {error!r}"
        return result
    port = free_port()
    command, env, cwd, name, path = prepare(peer, args, port)
    url = f"http://127.0.0.1:{port}"
    body = mlflow_body() if peer == "mlflow" else v2_body()
    result["load_before_wait"] = round(load1(), 2)
    if args.max_busy:  # gate on CPU actually used by others now (3 s sample), not load1
        start_wait = time.time()
        while (busy := busy_share()) > args.max_busy and time.time() - start_wait < args.peer_wait:
            print(f"  CPU {busy:.0%} busy (others) > {args.max_busy:.0%}; waiting", flush=True)
            time.sleep(5)
        load, waited = load1(), time.time() - start_wait
    else:
        load, waited = wait_quiet(args.max_load, args.peer_wait)
    result["load_at_start"], result["waited_s"] = round(load, 2), round(waited)
    result["cpu_busy_before"] = round(busy_share(), 3)  # others' work, nothing of ours runs
    log = open(PEERS / f"{peer}.server.log", "w")
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    result["command"] = " ".join(command)
    try:
        deadline = start + args.start_timeout
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"exited with {process.returncode} (see {log.name})")
            if post_ok(url + path, body):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"not ready within {args.start_timeout}s (see {log.name})")
        result["ready_s"] = round(time.perf_counter() - start, 2)
        time.sleep(1)
        result["rss_idle_mb"] = round(tree_rss_mb(process.pid), 1)
        result["processes"] = len(tree_pids(process.pid))
        sampler = RssSampler(process.pid)
        sampler.start()
        if peer == "mlflow":
            bench = [str(VENV_PY), str(HERE / "bench_mlflow.py"), url]
        else:
            bench = [str(MODELYARD), "bench", url]
        bench += args.bench_extra.split() if args.bench_extra else []
        bench += [
            "--model",
            name,
            "-c",
            args.concurrency,
            "--duration",
            args.duration,
            "--shape",
            "1,28,28",
            "--json",
        ]
        result["bench_command"] = " ".join(bench)
        import resource

        t0, s0, w0 = busy_jiffies(), tree_jiffies(process.pid), time.time()
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(bench, capture_output=True, text=True, timeout=600)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        hz = os.sysconf("SC_CLK_TCK")
        ours = (tree_jiffies(process.pid) - s0) + hz * (
            c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
        )
        capacity = (time.time() - w0) * hz * (os.cpu_count() or 1)
        # CPU used during the bench by processes that are neither the server nor the
        # load generator: other people's jobs. Above a few % the numbers are disturbed.
        result["others_cpu_during"] = round(max(0.0, (busy_jiffies() - t0 - ours) / capacity), 3)
        result["ours_cpu_during"] = round(ours / capacity, 3)
        sampler.stop.set()
        result["rss_peak_mb"] = round(max(sampler.peak, result["rss_idle_mb"]), 1)
        if done.returncode != 0:
            raise RuntimeError(f"bench failed: {done.stderr.strip()[-800:]}")
        result["bench"] = json.loads(done.stdout)
        result["load_after"] = round(load1(), 2)
    except Exception as error:
        result["error"] = str(error)
        log.flush()
        result["server_log_tail"] = Path(log.name).read_text()[-1500:]
    finally:
        stop(process, peer)
    return result


def table(results: list[dict], ceiling: list[dict] | None) -> str:
    levels = sorted(
        {lv["concurrency"] for r in results if "bench" in r for lv in r["bench"]["levels"]}
    )

    def level(r: dict, c: int) -> dict | None:
        for lv in r.get("bench", {}).get("levels", []):
            if lv["concurrency"] == c:
                return lv
        return None

    def rps(r: dict, c: int) -> float:
        lv = level(r, c)
        return lv["throughput"] if lv else 0.0

    mine = next((r for r in results if r["peer"] == "modelyard"), None)
    peers = [r for r in results if r["peer"] != "modelyard"]
    lines = []
    head = "| server | " + " | ".join(
        f"c={c} req/s | c={c} p50 ms | c={c} p99 ms | c={c} err" for c in levels
    )
    lines += [
        head + " | ready s | RSS idle/peak MB | procs | load1 / CPU busy before |",
        "|" + "---|" * (1 + 4 * len(levels) + 4),
    ]
    for r in results:
        if "bench" not in r:
            lines.append(f"| {r['peer']} | FAILED: {r.get('error', '?')[:200]} |")
            continue
        cells = []
        for c in levels:
            lv = level(r, c) or {}
            cells += [
                f"{lv.get('throughput', 0):,.0f}",
                f"{lv.get('p50_ms') or 0:.1f}",
                f"{lv.get('p99_ms') or 0:.1f}",
                str(lv.get("errors", "?")),
            ]
        lines.append(
            f"| {r['peer']} | "
            + " | ".join(cells)
            + f" | {r['ready_s']} | {r['rss_idle_mb']:.0f}/{r['rss_peak_mb']:.0f}"
            f" | {r.get('processes', '?')}"
            f" | {r.get('load_at_start')} / {r.get('cpu_busy_before', 0):.0%} |"
        )
    if mine and "bench" in mine:
        lines.append("")
        for c in levels:
            ok = [r for r in peers if "bench" in r]
            if not ok:
                break
            best = max(ok, key=lambda r: rps(r, c))
            ratio = rps(mine, c) / rps(best, c) if rps(best, c) else float("inf")
            lines.append(
                f"- c={c}: modelyard {rps(mine, c):,.0f} req/s vs best peer "
                f"{best['peer']} {rps(best, c):,.0f} req/s -> {ratio:.2f}x"
            )
        if ceiling:
            for entry in ceiling:
                lines.append(
                    f"- ORT in-process batch {entry['batch']}: "
                    f"{entry['images_per_s']:,.0f} images/s ({entry['ms_per_run']:.3f} ms/run)"
                )
            top = max(ceiling, key=lambda e: e["batch"])
            c = max(levels)
            lines.append(
                f"- modelyard c={c} / ORT batch {top['batch']} ceiling: "
                f"{rps(mine, c) / top['images_per_s']:.1%}"
            )
    return "\n".join(lines)


def main() -> int:
    global RESULTS
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", required=True, help="bundle folder with model.onnx")
    parser.add_argument("--run-dir", required=True, help="training run folder (flask_torch)")
    parser.add_argument("--model-name", default=None, help="bundle's model name (modelyard)")
    parser.add_argument(
        "--modelyard-home", default=os.environ.get("MODELYARD_HOME", "/tmp/servebench")
    )
    parser.add_argument("--peers", default=",".join(ORDER))
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--max-load", type=float, default=1.0)
    parser.add_argument("--max-wait", type=float, default=600)
    parser.add_argument(
        "--peer-wait",
        type=float,
        default=90,
        help="per peer, most seconds to wait for the load to drop (our own "
        "previous run lifts the 1-minute average, so this is short)",
    )
    parser.add_argument(
        "--max-busy",
        type=float,
        default=0.0,
        help="instead of the load average, wait (up to --peer-wait) until "
        "other processes use at most this share of the CPUs (e.g. 0.15)",
    )
    parser.add_argument("--start-timeout", type=float, default=180)
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument(
        "--modelyard-settings",
        default="",
        help="extra key=value serve settings for modelyard (variants)",
    )
    parser.add_argument("--bench-extra", default="", help="extra bench flags, e.g. --binary")
    parser.add_argument("--tag", default="", help="suffix for the result file names")
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON results")
    args = parser.parse_args()
    RESULTS = Path(args.results)
    if args.model_name is None:
        meta = (
            json.loads((Path(args.bundle) / "bundle.json").read_text())
            if (Path(args.bundle) / "bundle.json").exists()
            else {}
        )
        args.model_name = meta.get("name") or Path(args.bundle).name
    RESULTS.mkdir(parents=True, exist_ok=True)
    ceiling = None
    if not args.no_ceiling:
        wait_quiet(args.max_load, args.max_wait)
        out = subprocess.run(
            [
                str(VENV_PY),
                str(HERE / "ort_ceiling.py"),
                str(Path(args.bundle) / "model.onnx"),
                "1,32",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        ceiling = json.loads(out.stdout)
        (RESULTS / "ort_ceiling.json").write_text(json.dumps(ceiling, indent=2))
        print("ORT ceiling:", ceiling, flush=True)
    elif (RESULTS / "ort_ceiling.json").exists():
        ceiling = json.loads((RESULTS / "ort_ceiling.json").read_text())
    for peer in args.peers.split(","):
        print(f"== {peer}", flush=True)
        result = run_peer(peer, args)
        result["variant"] = {"settings": args.modelyard_settings, "bench": args.bench_extra}
        (RESULTS / f"{peer}{args.tag}.json").write_text(json.dumps(result, indent=2))
        summary = {k: result.get(k) for k in ("ready_s", "rss_idle_mb", "rss_peak_mb", "error")}
        if "bench" in result:
            summary["levels"] = [
                (lv["concurrency"], round(lv["throughput"]), lv["p99_ms"], lv["errors"])
                for lv in result["bench"]["levels"]
            ]
        print(f"   {summary}", flush=True)
    results = [
        json.loads((RESULTS / f"{p}{args.tag}.json").read_text())
        for p in ORDER
        if (RESULTS / f"{p}{args.tag}.json").exists()
    ]
    text = table(results, ceiling)
    (RESULTS / f"table{args.tag}.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
