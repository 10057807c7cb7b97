"""Benchmark: the IRT engine (``seedtest_assets.core.irt``) against Python peers, no database.

Simulated 2PL data (``simulate``: sparse, each user answers ``--per-user`` of ``--items``
items) is calibrated by our sparse Bock-Aitkin EM and by PyPI ``mirt`` (Rust core, dense
person x item input), and a 250k-response subset also by ``girth`` (``twopl_mml``). Then
scoring: EAP for one student (``ItemBank.score_one``) and rescoring every student (``score``).
Then identifiers: calibrate + score on the same data with integer ids and with text ids
(``"u-0000123"`` / ``"item-1007"`` in the integers' order, and random UUID user ids), each
run in a fresh child process; time and peak memory as ratios to the integer ids. Last, the
real-shaped window (issue 18): the weekly job's input built from the generator's population
(``--window-users`` x ``--window-weeks``, validated and capped as ``calibrate_week`` does),
where EM needs ~5x the cycles of the simulated data: plain EM from scratch (the job before,
the baseline), SQUAREM from scratch, and SQUAREM from the previous week's fit (the job now),
each against a fit converged to tol 1e-7.

Comparable settings: 61 quadrature points on [-6, 6] (girth: its own grid, see below),
tolerance 1e-4 on parameter changes, at most 500 cycles. ``mirt`` and ``girth`` fit without
item priors (maximum likelihood), so ours is run both with its default weak priors (the
production setting, timed and reported first) and without priors. The log-likelihoods are
compared on one scale: our marginal log-likelihood function evaluated at each package's
estimates (mirt's own figure is printed as well). "Equal" means within 1e-5 nats per
response.

Item quality (issue 16, ``--quality-only``): the calibration as the weekly job runs it, then
the cost added by standard errors, item fit and DIF across random groups, measured in the
same run, with the SE intervals' coverage of the true parameters and the tests' rejection
rates (the data have no misfit and no DIF).

Run:  .venv/bin/python benchmarks/irt.py [--users 100000 --items 2000 --per-user 50
      --seed 0 --skip-peers --id-repeat 3 --window-users 100000 --window-only
      --quality-only --dif-groups 5]
A peer package that is missing or fails is reported with the reason; the script goes on.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import polars as pl
from common import machine, peak_rss_mb, run_main

from seedtest_assets.core.irt import ItemBank, calibrate, score, simulate
from seedtest_assets.core.irt.data import response_arrays, sparse_counts
from seedtest_assets.core.irt.em import marginal_log_likelihood
from seedtest_assets.core.irt.quadrature import (
    DEFAULT_CALIBRATION_POINTS,
    grid,
    log_normal_weights,
)

GIRTH_RESPONSES = 250_000
GOAL_CALIBRATE_S = 10.0
GOAL_MIRT_RATIO = 5.0
GOAL_SCORE_ONE_US = 50.0
GOAL_RESCORE_S = 1.0
#: Log-likelihoods count as equal within this many nats per response.
EQUAL_LL_PER_RESPONSE = 1e-5
#: Text ids against integer ids (calibrate + score): time and peak memory ratios.
GOAL_TEXT_ID_TIME = 1.25
GOAL_TEXT_ID_MEMORY = 1.5
#: The weekly job on the real-shaped window (issue 18): E-steps, and the distance of its
#: estimates (a, d) and log-likelihood from a tightly converged fit (tol 1e-7).
GOAL_WINDOW_CYCLES = 30
GOAL_WINDOW_GAP = 1e-3
GOAL_WINDOW_DLL = 0.01


def _rss_mb(field: str) -> float | None:
    """VmRSS / VmHWM of this process from /proc, MiB (None where unavailable)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


#: Runs of each item-quality measurement; the fastest counts (this machine's run-to-run
#: noise was +-30% on single runs: the SEs once measured 0.60 s and 1.45 s, same code).
QUALITY_RUNS = 3


def fastest(func: Callable[[], Any], runs: int = QUALITY_RUNS) -> tuple[Any, float]:
    """(result, wall seconds) of the fastest of ``runs`` calls of ``func``."""
    best = min((measured(func) for _ in range(runs)), key=lambda r: r[1])
    return best[0], best[1]


def measured(func: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """Run ``func``; return (result, wall seconds, peak RSS increase in MiB).

    The peak is the kernel's high-water mark, reset just before the call by writing 5 to
    /proc/self/clear_refs (Linux >= 4.0), minus the resident size at that moment. None when
    the reset is not allowed.
    """
    base: float | None = None
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = _rss_mb("VmRSS")
    except OSError:
        base = None
    start = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - start
    hwm = _rss_mb("VmHWM")
    peak = None if base is None or hwm is None else max(hwm - base, 0.0)
    return result, seconds, peak


def our_loglik(responses: pl.DataFrame, items: pl.DataFrame) -> float:
    """Our marginal log-likelihood (nats; 61-point grid, N(0, 1)) at given item parameters
    (frame item_id, a, d, optional c; items missing from the frame raise)."""
    data = response_arrays(responses)
    table = pl.DataFrame({"item_id": data.item_ids.decode()}).join(items, on="item_id", how="left")
    if table["a"].null_count():
        raise ValueError("item parameters missing for some items")
    a = table["a"].to_numpy()
    d = table["d"].to_numpy()
    c = table["c"].to_numpy() if "c" in table.columns else np.zeros(a.size)
    counts = sparse_counts(
        data.users, data.items, data.correct, data.user_ids.size, data.item_ids.size
    )
    nodes = grid(DEFAULT_CALIBRATION_POINTS)
    return marginal_log_likelihood(counts, a, d, c, nodes, log_normal_weights(nodes))


def recovery(estimated: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """RMSE and correlation of a and b against the true items (joined on item_id)."""
    both = estimated.join(truth, on="item_id", suffix="_true")
    out: dict[str, float] = {}
    for p in ("a", "b"):
        x, y = both[p].to_numpy(), both[f"{p}_true"].to_numpy()
        out[f"rmse_{p}"] = float(np.sqrt(np.mean((x - y) ** 2)))
        out[f"corr_{p}"] = float(np.corrcoef(x, y)[0, 1])
        out[f"mae_{p}"] = float(np.median(np.abs(x - y)))
    return out


def dense_matrix(responses: pl.DataFrame) -> tuple[np.ndarray, pl.Series, pl.Series]:
    """(X, user_ids, item_ids): X float32 (n_users, n_items) with 1/0 and NaN for missing,
    rows and columns in sorted id order (as our encoding)."""
    data = response_arrays(responses)
    x = np.full((data.user_ids.size, data.item_ids.size), np.nan, dtype=np.float32)
    x[data.users, data.items] = data.correct
    return x, data.user_ids.decode(), data.item_ids.decode()


def run_ours(responses: pl.DataFrame, truth: pl.DataFrame, label: str, **kw: Any) -> dict:
    cal, seconds, peak = measured(lambda: calibrate(responses, model="2PL", **kw))
    rec = recovery(cal.items, truth)
    peak_txt = "n/a" if peak is None else f"{peak:.0f} MiB"
    print(
        f"  ours ({label}): {seconds:.2f} s, peak memory +{peak_txt}, {cal.iterations} "
        f"iterations, converged={cal.converged}, log-likelihood {cal.log_likelihood:.2f}"
    )
    print(
        f"    a: RMSE {rec['rmse_a']:.4f}, corr {rec['corr_a']:.4f}, median |error| "
        f"{rec['mae_a']:.4f};  b: RMSE {rec['rmse_b']:.4f}, corr {rec['corr_b']:.4f}, "
        f"median |error| {rec['mae_b']:.4f}"
    )
    return {"cal": cal, "seconds": seconds, "peak": peak, **rec}


def run_mirt(responses: pl.DataFrame, truth: pl.DataFrame) -> dict | None:
    try:
        import mirt
    except Exception as exc:
        print(f"  mirt: not available ({type(exc).__name__}: {exc}); skipped")
        return None
    version = getattr(mirt, "__version__", "?")
    try:
        x, _, item_ids = dense_matrix(responses)

        def fit(x: np.ndarray) -> Any:
            return mirt.fit_mirt(
                x,
                model="2PL",
                estimation="EM",
                n_quadpts=DEFAULT_CALIBRATION_POINTS,
                max_iter=500,
                tol=1e-4,
                compute_standard_errors=False,
            )

        res, seconds, peak = measured(lambda: fit(x))
        a = np.asarray(res.model.discrimination, dtype=np.float64).ravel()
        b = np.asarray(res.model.difficulty, dtype=np.float64).ravel()
        est = pl.DataFrame({"item_id": item_ids, "a": a, "b": b, "d": -a * b})
    except Exception as exc:
        print(f"  mirt {version}: failed ({type(exc).__name__}: {exc}); skipped")
        return None
    rec = recovery(est, truth)
    ll_ours_scale = our_loglik(responses, est)
    peak_txt = "n/a" if peak is None else f"{peak:.0f} MiB"
    print(
        f"  mirt {version} (EM, 61 points, tol 1e-4, no priors, no SEs): {seconds:.2f} s, "
        f"peak memory +{peak_txt}, {res.n_iterations} iterations, converged={res.converged}"
    )
    print(
        f"    log-likelihood: mirt's own {float(res.log_likelihood):.2f}; "
        f"ours at mirt's estimates {ll_ours_scale:.2f}"
    )
    print(
        f"    a: RMSE {rec['rmse_a']:.4f}, corr {rec['corr_a']:.4f}, median |error| "
        f"{rec['mae_a']:.4f};  b: RMSE {rec['rmse_b']:.4f}, corr {rec['corr_b']:.4f}, "
        f"median |error| {rec['mae_b']:.4f}"
    )
    return {
        "seconds": seconds,
        "peak": peak,
        "ll_own": float(res.log_likelihood),
        "ll": ll_ours_scale,
        "version": version,
        **rec,
    }


def _girth_fit(fit: Callable, data: np.ndarray, opts: dict) -> tuple[np.ndarray, ...]:
    start = time.perf_counter()
    res = fit(data, opts)
    seconds = time.perf_counter() - start
    a = np.asarray(res["Discrimination"], dtype=np.float64).ravel()
    return a, np.asarray(res["Difficulty"], dtype=np.float64).ravel(), seconds


def in_child(func: Callable[[], Any], timeout: float) -> Any:
    """``func()`` in a forked child process; its result, or None if it runs past ``timeout``
    seconds (the child is then terminated). Exceptions in the child are re-raised here."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            send.send(("ok", func()))
        except Exception as exc:
            send.send(("error", f"{type(exc).__name__}: {exc}"))

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    if not recv.poll(timeout):
        proc.terminate()
        proc.join()
        return None
    status, value = recv.recv()
    proc.join()
    if status == "error":
        raise RuntimeError(value)
    return value


def run_girth(responses: pl.DataFrame, truth: pl.DataFrame, timeout: float) -> dict | None:
    try:
        import girth
        from girth import tag_missing_data, twopl_mml
    except Exception as exc:
        print(f"  girth: not available ({type(exc).__name__}: {exc}); skipped")
        return None
    version = getattr(girth, "__version__", None) or _dist_version("girth")
    try:
        x, _, item_ids = dense_matrix(responses)
        data = np.where(np.isnan(x), -1, x).astype(int).T  # items x participants
        data = tag_missing_data(data, [0, 1])
        # girth's own stopping rule (max slope change < 1e-3) and cycle limit (25)
        opts = {"quadrature_n": DEFAULT_CALIBRATION_POINTS}
        out = in_child(lambda: _girth_fit(twopl_mml, data, opts), timeout)
        if out is None:
            print(f"  girth {version}: did not finish within {timeout:.0f} s; stopped")
            return {"seconds": None, "version": version, "timeout": timeout}
        a, b, seconds = out
        est = pl.DataFrame({"item_id": item_ids, "a": a, "b": b, "d": -a * b})
    except Exception as exc:
        print(f"  girth {version}: failed ({type(exc).__name__}: {exc}); skipped")
        return None
    rec = recovery(est, truth)
    ll = our_loglik(responses, est)
    print(
        f"  girth {version} (twopl_mml, 61 points on its default range): {seconds:.2f} s, "
        f"log-likelihood (ours at girth's estimates) {ll:.2f}; a RMSE {rec['rmse_a']:.4f}, "
        f"b RMSE {rec['rmse_b']:.4f}, median |error| a {rec['mae_a']:.4f}, b {rec['mae_b']:.4f}"
    )
    return {"seconds": seconds, "ll": ll, "version": version, **rec}


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def bench_scoring(responses: pl.DataFrame, items: pl.DataFrame, repeat: int) -> dict:
    bank = ItemBank(items)
    first = responses["user_id"][0]
    one = responses.filter(pl.col("user_id") == first)
    ids, correct = one["item_id"].to_numpy(), one["is_correct"].to_numpy()
    for _ in range(200):  # warm-up
        bank.score_one(ids, correct)
    calls = []
    for _ in range(5000):
        start = time.perf_counter()
        bank.score_one(ids, correct)
        calls.append(time.perf_counter() - start)
    one_us = statistics.median(calls) * 1e6
    print(f"  score_one (EAP, {ids.size} responses): median {one_us:.1f} us over 5000 calls")
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = score(responses, bank, method="EAP")
        runs.append(time.perf_counter() - start)
    rescore = statistics.median(runs)
    print(
        f"  score (EAP, all {out.height:,} users, {responses.height:,} responses): median "
        f"{rescore:.3f} s of {repeat} (min {min(runs):.3f}, max {max(runs):.3f})"
    )
    return {"one_us": one_us, "rescore": rescore}


def text_id_forms(responses: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The responses with integer ids (``"integer"``) and two text forms: ``"text"``,
    zero-padded strings in the integers' order (``"u-0000123"``, ``"item-1007"``), and
    ``"UUID"``, random UUID user ids (an order unrelated to the rows', as a JWT ``sub``)."""
    users = responses["user_id"].unique().sort()
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(users.len(), 16), dtype=np.uint8)
    hexes = [bytes(row).hex() for row in raw]
    ids = pl.DataFrame(
        {
            "user_id": users,
            "padded": [f"u-{i:07d}" for i in range(users.len())],
            "uuid": [f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}" for h in hexes],
        }
    )
    joined = responses.join(ids, on="user_id", how="left", maintain_order="left")
    item = pl.format("item-{}", pl.col("item_id"))
    return {
        "integer": responses,
        "text": joined.select(user_id="padded", item_id=item, is_correct="is_correct"),
        "UUID": joined.select(user_id="uuid", item_id=item, is_correct="is_correct"),
    }


def _calibrate_and_score(frame: pl.DataFrame) -> tuple[float, float | None, str]:
    """calibrate + score (EAP) of ``frame``: (seconds, peak memory MiB, user_id dtype)."""
    abilities, seconds, peak = measured(
        lambda: score(frame, calibrate(frame, model="2PL").items, method="EAP")
    )
    return seconds, peak, str(abilities.schema["user_id"])


def bench_ids(responses: pl.DataFrame, repeat: int, timeout: float) -> dict:
    """calibrate + score (EAP) per id form, each run in a fresh (spawned, not forked: polars'
    thread pool does not survive a fork) child process, so every form starts from the same
    memory and a peak is not hidden by memory an earlier run freed: median wall time and
    peak memory of ``repeat`` runs, and their ratios to the integer ids."""
    forms = text_id_forms(responses)
    out: dict[str, dict] = {}
    ctx = mp.get_context("spawn")
    for _ in range(repeat):  # forms interleaved: machine load drifts alike for all
        for name, frame in forms.items():
            with ctx.Pool(1) as pool:
                got = pool.apply_async(_calibrate_and_score, (frame,)).get(timeout)
            out.setdefault(name, {"runs": [], "dtype": got[2]})["runs"].append(got[:2])
    base: dict = {}
    for name, res in out.items():
        res["seconds"] = statistics.median(r[0] for r in res["runs"])
        peaks = [r[1] for r in res["runs"] if r[1] is not None]
        res["peak"] = statistics.median(peaks) if peaks else None
        base = base or res
        res["time_ratio"] = res["seconds"] / base["seconds"]
        res["memory_ratio"] = (
            None if res["peak"] is None or not base["peak"] else res["peak"] / base["peak"]
        )
        peak_txt = "n/a" if res["peak"] is None else f"+{res['peak']:.0f} MiB"
        mem_txt = "" if res["memory_ratio"] is None else f", {res['memory_ratio']:.2f}x memory"
        print(
            f"  {name} ids ({res['dtype']}): calibrate + score {res['seconds']:.2f} s, peak "
            f"memory {peak_txt} (medians of {repeat}); {res['time_ratio']:.2f}x time"
            f"{mem_txt} of integer ids"
        )
    return out


def window_responses(users: int, weeks: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The weekly job's input on the generator's population, in memory: the valid, capped
    responses of the ``weeks``-week window ending with the last week, and of the window one
    week earlier (whose fit is the warm start), as ``calibrate_week`` builds them."""
    win = window_population(users, weeks, seed)
    return win["responses"], win["last_week"]


def window_population(users: int, weeks: int, seed: int) -> dict[str, Any]:
    """:func:`window_responses` and what the weekly ``item_quality`` reads besides:
    ``responses`` and ``last_week`` (user_id, item_id, is_correct), ``capped`` (the window's
    capped rows, attempted_at included), ``week_start`` (the window's last week) and
    ``organisations`` (user_id, group = org_id)."""
    from datetime import date, datetime, timedelta

    from seedtest_assets.core.attempts.validate import validate_attempts
    from seedtest_assets.core.mirt_item_params.share import cap_student_responses
    from seedtest_assets.core.synthetic import SyntheticConfig, generate

    start = date(2026, 8, 3)  # benchmarks/generate.py's population
    pop = generate(SyntheticConfig(n_users=users, weeks=weeks, seed=seed, start=start))
    raw = pop.attempts.join(
        pop.items.select("item_id", item_topic_id="topic_id"), on="item_id", how="left"
    ).with_columns(user_known=pl.col("user_id").is_in(pop.users["user_id"].implode()))
    end = datetime.combine(start + timedelta(weeks=weeks), datetime.min.time())

    def window(until: datetime) -> pl.DataFrame:
        rows = raw.filter(pl.col("attempted_at") < until)
        checked = validate_attempts(rows, now=end, window=(start, until.date()))
        capped, _ = cap_student_responses(checked.valid)
        return capped

    now = window(end)
    return {
        "responses": now.select("user_id", "item_id", "is_correct"),
        "last_week": window(end - timedelta(days=7)).select("user_id", "item_id", "is_correct"),
        "capped": now,
        "week_start": (end - timedelta(days=7)).date(),
        "organisations": pop.users.select("user_id", group="org_id"),
    }


def bench_window(args: argparse.Namespace) -> dict:
    """Plain EM from scratch (the job before issue 18), SQUAREM from scratch, and SQUAREM from
    last week's fit (the job now) on the real-shaped window, against a tight reference."""
    t0 = time.perf_counter()
    responses, last_week = window_responses(args.window_users, args.window_weeks, args.seed)
    print(
        f"real-shaped window: generator, {args.window_users:,} students x "
        f"{args.window_weeks} weeks: {responses.height:,} valid capped responses "
        f"({time.perf_counter() - t0:.1f} s to build)"
    )
    start_items = calibrate(last_week, accelerate="squarem").items.filter(~pl.col("flagged"))
    ref = calibrate(responses, accelerate="squarem", tol=1e-7, max_cycles=2_000)
    runs = {
        "plain EM, cold (before)": {"accelerate": "none"},
        "SQUAREM, cold": {"accelerate": "squarem"},
        "SQUAREM, warm (the job)": {"accelerate": "squarem", "start_items": start_items},
    }
    free = ref.items.filter(~pl.col("flagged")).select("item_id", "a", "b", "d")
    out = {}
    print(f"  reference (SQUAREM, tol 1e-7): {ref.iterations} E-steps, LL {ref.log_likelihood:.3f}")
    for label, kw in runs.items():
        cal, seconds, _ = measured(lambda kw=kw: calibrate(responses, **kw))
        both = cal.items.join(free, on="item_id", suffix="_ref")
        gaps = {k: float((both[k] - both[f"{k}_ref"]).abs().max()) for k in ("a", "d", "b")}
        dll = cal.log_likelihood - ref.log_likelihood
        out[label] = {"cal": cal, "seconds": seconds, "gaps": gaps, "dll": dll}
        print(
            f"  {label:26s} {cal.iterations:4d} E-steps {seconds:6.2f} s  max |d| vs ref: "
            f"a {gaps['a']:.1e}, d {gaps['d']:.1e}, b {gaps['b']:.1e}; dLL {dll:+.4f}"
        )
    before, now = out["plain EM, cold (before)"], out["SQUAREM, warm (the job)"]
    print(
        f"  before / now: {before['seconds'] / now['seconds']:.1f}x time, "
        f"{before['cal'].iterations / now['cal'].iterations:.1f}x E-steps"
    )
    return out


#: Issue 16: SEs, fit and DIF add at most this share to the weekly calibration's time.
GOAL_QUALITY_ADDED = 0.5


def _share(flags: pl.Series) -> float:
    """The share of True (NaN when empty)."""
    return float(flags.mean()) if flags.len() else float("nan")  # type: ignore[arg-type]


def bench_quality(responses: pl.DataFrame, truth: pl.DataFrame, groups: int, seed: int) -> dict:
    """Item quality at the data's size against the calibration it follows, in this run:
    the calibration as the weekly job runs it (SQUAREM, default priors) alone, then with
    standard errors (what the weekly calibration now computes), item fit on every student
    (the engine), and the weekly ``item_quality`` assessment as the asset runs it (fit on
    at most 20,000 students, drift against a previous week, the DIF screen across
    ``groups`` random groups of students, at most 3,000 sampled per group)."""
    from seedtest_assets.core.irt import item_fit
    from seedtest_assets.core.item_quality.assess import QualitySettings, assess_items
    from seedtest_assets.core.mirt_item_params.pipeline import DEFAULT_TOL

    # The product's ids are text ("item-1007"), as the job sees them.
    responses = responses.with_columns(
        pl.format("u-{}", "user_id").alias("user_id"),
        pl.format("item-{}", "item_id").alias("item_id"),
    )
    truth = truth.with_columns(pl.format("item-{}", "item_id").alias("item_id"))
    job = {"accelerate": "squarem", "tol": DEFAULT_TOL}
    cal, t_cal = fastest(lambda: calibrate(responses, **job))
    with_se, t_se_total = fastest(lambda: calibrate(responses, **job, standard_errors=True))
    t_se = t_se_total - t_cal
    fit, t_fit, _ = measured(lambda: item_fit(responses, cal.items, conditioning="pattern"))
    rng = np.random.default_rng(seed)
    users = responses["user_id"].unique().sort()
    group_frame = pl.DataFrame(
        {"user_id": users, "group": rng.integers(0, groups, users.len()).astype(str)}
    )
    stored = with_se.items.with_columns(
        pl.col("item_id").cast(pl.String), scale_mean=pl.lit(0.0), scale_sd=pl.lit(1.0)
    )
    settings = QualitySettings(seed=seed)
    weekly, t_weekly = fastest(
        lambda: assess_items(
            responses, stored, stored, model="2PL", groups=group_frame, settings=settings
        )
    )
    est = with_se.items.join(truth.select("item_id", ta="a", tb="b"), on="item_id")
    cover_a = float(((est["a"] - est["ta"]).abs() < 1.96 * est["a_se"]).mean())
    cover_b = float(((est["b"] - est["tb"]).abs() < 1.96 * est["b_se"]).mean())
    added = t_se + t_weekly
    items = weekly.items
    out = {
        "calibrate_s": t_cal,
        "se_s": t_se,
        "fit_all_s": t_fit,
        "weekly_s": t_weekly,
        "added_ratio": added / t_cal,
        "cover_a": cover_a,
        "cover_b": cover_b,
        "fit_reject": float((fit["p"] < 0.05).mean()),
        "weekly_fit_reject": _share(items["fit_p"].drop_nulls() < 0.05),
        "weekly_misfit": weekly.misfit,
        "weekly_misfit_chance": weekly.misfit_expected_max,
        "dif_reject": _share(items["dif_p"].drop_nulls() < 0.05),
        "dif_tested": weekly.dif_tested,
        "dif_flagged": weekly.dif_items,
    }
    print(
        f"  calibration as the job runs it (SQUAREM, tol {DEFAULT_TOL:g}, default priors, text "
        f"ids, cold: no previous week): {cal.iterations} E-steps, {t_cal:.2f} s\n"
        f"  + standard errors ({with_se.se_method}): {t_se:+.2f} s; 95% intervals cover a "
        f"{cover_a:.1%}, b {cover_b:.1%}\n"
        f"  item fit on every student (S-X2 | other responses; not in the weekly job): "
        f"{t_fit:.2f} s; rejected at 5% under the true model: {out['fit_reject']:.1%}\n"
        f"  weekly item_quality (fit on <= {settings.fit_max_students:,} students, drift, DIF "
        f"screen over {groups} random groups x <= {settings.dif_max_group_students:,} "
        f"students): {t_weekly:.2f} s; fit rejected at 5%: {out['weekly_fit_reject']:.1%} "
        f"(misfit at 1%: {weekly.misfit}, chance <= {weekly.misfit_expected_max}); DIF "
        f"rejected at 5% without DIF: {out['dif_reject']:.1%} of {weekly.dif_tested:,}, "
        f"flagged {weekly.dif_items}\n"
        f"  added (SEs + weekly item_quality): {added:.2f} s = {out['added_ratio']:.2f}x the "
        f"calibration (goal <= {GOAL_QUALITY_ADDED:.2f}x)"
    )
    return out


def bench_quality_window(users: int, weeks: int, seed: int) -> dict:
    """Item quality on the real-shaped window (the generator's population, as the weekly job
    reads it), against the calibration as the job runs it there: SQUAREM at the job's tol
    from last week's fit, then linked to last week's stored scale (the link is not timed).
    The weekly ``item_quality`` gets what the asset passes: last week's stored parameters,
    the overlap counts and the students' organisations."""
    from seedtest_assets.core.item_quality.assess import assess_items
    from seedtest_assets.core.mirt_item_params.linking import apply_link, robust_link
    from seedtest_assets.core.mirt_item_params.pipeline import DEFAULT_TOL, common_responses

    t0 = time.perf_counter()
    win = window_population(users, weeks, seed)
    responses = win["responses"]
    print(
        f"  real-shaped window: generator, {users:,} students x {weeks} weeks: "
        f"{responses.height:,} valid capped responses, "
        f"{responses['item_id'].n_unique():,} items ({time.perf_counter() - t0:.1f} s to build)"
    )
    job = {"accelerate": "squarem", "tol": DEFAULT_TOL}
    scale = {"scale_mean": pl.lit(0.0), "scale_sd": pl.lit(1.0)}
    previous = calibrate(win["last_week"], **job, standard_errors=True).items.with_columns(**scale)
    start = previous.filter(~pl.col("flagged")).select("item_id", "a", "d", "c")
    cal, t_cal = fastest(lambda: calibrate(responses, **job, start_items=start))
    with_se, t_se_total = fastest(
        lambda: calibrate(responses, **job, start_items=start, standard_errors=True)
    )
    t_se = t_se_total - t_cal
    overlap = common_responses(win["capped"], win["week_start"])
    link, _ = robust_link(with_se.items, previous, overlap=overlap)
    stored = apply_link(with_se.items, link).with_columns(
        scale_mean=pl.lit(link.A * with_se.population_mean + link.B),
        scale_sd=pl.lit(link.A * with_se.population_sd),
    )
    weekly, t_weekly = fastest(
        lambda: assess_items(
            responses,
            stored,
            previous,
            model="2PL",
            overlap=overlap,
            groups=win["organisations"],
        )
    )
    added = t_se + t_weekly
    out = {
        "responses": responses.height,
        "calibrate_s": t_cal,
        "e_steps": cal.iterations,
        "se_s": t_se,
        "weekly_s": t_weekly,
        "added_ratio": added / t_cal,
        "misfit": weekly.misfit,
        "misfit_chance": weekly.misfit_expected_max,
        "fit_tested": weekly.fit_tested,
        "drift_tested": weekly.drift_tested,
        "drifted": weekly.drifted,
        "dif_tested": weekly.dif_tested,
        "dif_items": weekly.dif_items,
        "dif_groups": weekly.dif_groups.height,
    }
    print(
        f"  calibration as the job runs it (SQUAREM, tol {DEFAULT_TOL:g}, warm from last "
        f"week): {cal.iterations} E-steps, {t_cal:.2f} s\n"
        f"  + standard errors: {t_se:+.2f} s\n"
        f"  weekly item_quality: {t_weekly:.2f} s; misfit at 1% {weekly.misfit} of "
        f"{weekly.fit_tested:,} (chance <= {weekly.misfit_expected_max}), drifted "
        f"{weekly.drifted} of {weekly.drift_tested:,}, DIF {weekly.dif_items} of "
        f"{weekly.dif_tested:,} over {weekly.dif_groups.height} organisations\n"
        f"  added (SEs + weekly item_quality): {added:.2f} s = {out['added_ratio']:.2f}x the "
        f"calibration (goal <= {GOAL_QUALITY_ADDED:.2f}x)"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--per-user", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-peers", action="store_true", help="skip mirt and girth")
    parser.add_argument("--repeat", type=int, default=5, help="rescoring runs (median)")
    parser.add_argument(
        "--girth-timeout", type=float, default=300.0, help="seconds before girth is stopped"
    )
    parser.add_argument(
        "--id-repeat", type=int, default=3, help="calibrate + score runs per id form (median)"
    )
    parser.add_argument(
        "--window-users", type=int, default=100_000, help="students of the real-shaped window"
    )
    parser.add_argument("--window-weeks", type=int, default=12)
    parser.add_argument("--window-only", action="store_true", help="only the real-shaped window")
    parser.add_argument(
        "--quality-only", action="store_true", help="only item quality (SEs, fit, DIF)"
    )
    parser.add_argument("--dif-groups", type=int, default=5, help="random groups for DIF")
    parser.add_argument(
        "--quality-window-users",
        type=int,
        default=50_000,
        help="students of the real-shaped window for item quality (50,000: ~5M responses)",
    )
    args = parser.parse_args()

    print(f"machine: {machine()}")
    if args.window_only:
        win = bench_window(args)
        print("\nsummary")
        window_rows(lambda g, v, m: print(f"| {g:<44} | {v:<34} | {m} |"), win)
        return
    start = time.perf_counter()
    responses, truth, _ = simulate(args.users, args.items, args.per_user, seed=args.seed)
    n = responses.height
    print(
        f"data: simulated 2PL, {args.users:,} users x {args.per_user} responses = {n:,} "
        f"responses, {args.items:,} items, seed {args.seed} ({time.perf_counter() - start:.1f} s)"
    )
    if args.quality_only:
        print("item quality (issue 16), simulated 2PL:")
        bench_quality(responses, truth, args.dif_groups, args.seed)
        print("item quality (issue 16), real-shaped:")
        bench_quality_window(args.quality_window_users, args.window_weeks, args.seed)
        return

    print("calibration (2PL, full data):")
    ours = run_ours(responses, truth, "default priors")
    ours_ml = run_ours(responses, truth, "no priors", priors=None)
    mirt_res = None if args.skip_peers else run_mirt(responses, truth)
    ll_ml = ours_ml["cal"].log_likelihood
    if mirt_res is not None:
        diff = ll_ml - mirt_res["ll"]
        ratio = mirt_res["seconds"] / ours["seconds"]
        ratio_ml = mirt_res["seconds"] / ours_ml["seconds"]
        print(
            f"  log-likelihood (one scale, ours): ours no priors {ll_ml:.2f}, mirt "
            f"{mirt_res['ll']:.2f}, difference {diff:+.2f} ({diff / n:+.2e} per response); "
            f"ours default priors {ours['cal'].log_likelihood:.2f}"
        )
        print(f"  mirt / ours: {ratio:.1f}x (default priors), {ratio_ml:.1f}x (no priors)")
        mirt_res.update(diff=diff, ratio=ratio, ratio_ml=ratio_ml)

    girth_res = None
    if not args.skip_peers:
        users_sub = max(1, GIRTH_RESPONSES // args.per_user)
        keep = responses["user_id"].unique().sort()[:users_sub]
        subset = responses.filter(pl.col("user_id").is_in(keep.implode()))
        print(f"calibration (2PL, subset: {users_sub:,} users, {subset.height:,} responses):")
        sub_ours = run_ours(subset, truth, "default priors")
        sub_ml = run_ours(subset, truth, "no priors", priors=None)
        girth_res = run_girth(subset, truth, args.girth_timeout)
        if girth_res is not None and girth_res["seconds"] is not None:
            girth_res["ratio"] = girth_res["seconds"] / sub_ours["seconds"]
            girth_res["ours"] = sub_ours["seconds"]
            diff = sub_ml["cal"].log_likelihood - girth_res["ll"]
            print(
                f"  girth / ours: {girth_res['ratio']:.1f}x; log-likelihood ours (no priors) "
                f"minus girth {diff:+.2f}"
            )

    print("scoring (true item parameters):")
    sc = bench_scoring(responses, truth, args.repeat)
    print("identifiers (calibrate + score EAP, the same data; integer vs text ids):")
    id_res = bench_ids(responses, args.id_repeat, args.girth_timeout)
    win = bench_window(args)
    print(
        f"peak RSS of this process since the last high-water reset (before the last measured "
        f"fit): {peak_rss_mb():.0f} MiB"
    )

    def row(goal: str, value: str, met: bool | str | None) -> None:
        status = (
            met if isinstance(met, str) else "-" if met is None else "met" if met else "NOT met"
        )
        print(f"| {goal:<44} | {value:<34} | {status:<7} |")

    print("\nsummary")
    row("goal", "measured", "status")
    print(f"|{'-' * 46}|{'-' * 36}|{'-' * 9}|")
    row(
        f"calibrate {n:,} responses <= {GOAL_CALIBRATE_S:.0f} s",
        f"{ours['seconds']:.2f} s",
        ours["seconds"] <= GOAL_CALIBRATE_S,
    )
    if mirt_res is not None:
        equal = abs(mirt_res["diff"]) / n <= EQUAL_LL_PER_RESPONSE
        row(
            f">= {GOAL_MIRT_RATIO:.0f}x faster than mirt, equal log-lik",
            f"{mirt_res['ratio']:.1f}x, dLL {mirt_res['diff']:+.2f}",
            mirt_res["ratio"] >= GOAL_MIRT_RATIO and equal,
        )
    else:
        row(f">= {GOAL_MIRT_RATIO:.0f}x faster than mirt, equal log-lik", "not run", None)
    if girth_res is not None and girth_res["seconds"] is None:
        row("girth, 250k responses (no goal)", f"> {girth_res['timeout']:.0f} s (stopped)", None)
    elif girth_res is not None:
        row(
            "girth, 250k responses (no goal)",
            f"{girth_res['seconds']:.1f} s vs {girth_res['ours']:.2f} s",
            None,
        )
    row(
        f"score_one 50 responses <= {GOAL_SCORE_ONE_US:.0f} us",
        f"{sc['one_us']:.1f} us",
        sc["one_us"] <= GOAL_SCORE_ONE_US,
    )
    row(
        f"rescore {args.users:,} users <= {GOAL_RESCORE_S:.0f} s",
        f"{sc['rescore']:.3f} s",
        sc["rescore"] <= GOAL_RESCORE_S,
    )
    for name, res in id_res.items():
        if name == "integer":
            continue
        row(
            f"{name} ids: time <= {GOAL_TEXT_ID_TIME}x integer ids",
            f"{res['time_ratio']:.2f}x ({res['seconds']:.2f} s)",
            res["time_ratio"] <= GOAL_TEXT_ID_TIME,
        )
        mem = res["memory_ratio"]
        row(
            f"{name} ids: memory <= {GOAL_TEXT_ID_MEMORY}x integer ids",
            "n/a" if mem is None else f"{mem:.2f}x (+{res['peak']:.0f} MiB)",
            None if mem is None else mem <= GOAL_TEXT_ID_MEMORY,
        )
    window_rows(row, win)


def window_rows(row: Callable[[str, str, Any], None], win: dict) -> None:
    """The real-shaped window's goals (issue 18) as summary rows."""
    job = win["SQUAREM, warm (the job)"]
    row(
        f"real-shaped window <= {GOAL_WINDOW_CYCLES} E-steps",
        f"{job['cal'].iterations} ({job['seconds']:.1f} s)",
        job["cal"].iterations <= GOAL_WINDOW_CYCLES,
    )
    for label, res in win.items():
        gaps = res["gaps"]
        row(
            f"{label}: a, d within {GOAL_WINDOW_GAP:g}",
            f"a {gaps['a']:.1e}, d {gaps['d']:.1e} (b {gaps['b']:.1e})",
            max(gaps["a"], gaps["d"]) <= GOAL_WINDOW_GAP,
        )
        row(
            f"{label}: |dLL| <= {GOAL_WINDOW_DLL:g}",
            f"{res['dll']:+.4f}",
            abs(res["dll"]) <= GOAL_WINDOW_DLL,
        )


if __name__ == "__main__":
    run_main(main)
