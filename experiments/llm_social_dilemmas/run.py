"""LLM agents in social dilemmas and in guess two-thirds: four known results, one model.

(a) **GovSim-style fishery** (Piatti et al. 2024): three LLM fishers share a lake
    (`fishery.yaml`), with comms off and with one talk step before every round. Per copy:
    survival (the stock never collapses in the 5 rounds) and over-use (the share of
    harvest requests above the sustainable share max(0, S - K/2) / N, the commons game's
    cooperation measure negated). Reference: most LLMs fail to sustain the resource;
    survival improves with communication for the strong models.
(b) **Grim-trigger signature** (Akata et al. 2023): the LLM agent against `defect_once`
    (cooperates in every round but round 2): its cooperation rate in round 3, right after
    the partner's single defection, and in rounds 4-5, against its rate in rounds 0-2.
    Reference: GPT-4 never cooperates again after one defection.
(c) **"Nicer than humans"** (Fontana, Pierri & Aiello 2024): the LLM agent against `random`
    partners that cooperate with probability alpha in {0, 0.25, 0.5, 0.75, 1}: niceness,
    forgiveness, retaliation, troublemaking and emulation (defined in `copies.py`).
    Reference: LLMs are nicer and more forgiving than humans, rarely troublemakers.
(d) **Guess two-thirds** with ten LLM players (GAMA-Bench, Huang et al. 2025): the mean
    number chosen per round, falling toward 0 or not (people: ~36 in round 1, then down).

Each sub-experiment plays its copies on one engine (`copies.play_copies`); every decision
is an LLM call in score mode (the softmax of the legal actions' log-likelihoods, sampled),
all copies' prompts in one batched call per step. The model: the embedded SmolLM2-135M-
Instruct by default, or any OpenAI-compatible server (`--llm-url URL --llm-model NAME`);
the results name it.

    python experiments/llm_social_dilemmas/run.py [--quick] [--seeds N] [--llm-url URL --llm-model NAME]
    # or its three parts in parallel processes, then the table from their outputs:
    for p in fishery partners two_thirds; do python experiments/llm_social_dilemmas/run.py --only $p & done; wait
    python experiments/llm_social_dilemmas/run.py --rewrite
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import copies as cp  # noqa: E402
import gallery as g  # noqa: E402

FOLDER = Path(__file__).resolve().parent
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFECTION_ROUND = 2
#: per sub-experiment: copies (x --seeds) and rounds, full and quick
FULL = {"fishery": (2, 4), "signature": (4, 5), "sweep": (2, 5), "two_thirds": (1, 3)}
QUICK = {"fishery": (1, 2), "signature": (1, 4), "sweep": (1, 4), "two_thirds": (1, 1)}


def _options(parser: Any) -> None:
    parser.add_argument("--llm-url", default=None, help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (default: the embedded model)")
    parser.add_argument("--rewrite", action="store_true", help="redo the table and figure from --out's results.json (no play)")
    parser.add_argument("--only", choices=("fishery", "partners", "two_thirds"), default=None,
                        help="play one part only, into part-<name>.json (run the parts in parallel processes, then --rewrite)")
    parser.add_argument("--llm-model", default=None, help="the model's name on --llm-url's server (or a local model directory without it)")


def _scenario(name: str, backend: Any, **fields: Any) -> Any:
    from mas.agents.llm.retarget import with_backend

    scenario = g.scenario(FOLDER / f"{name}.yaml", **fields)
    return with_backend(scenario, backend) if backend is not None else scenario


# ----- (a) the fishery -----------------------------------------------------------------------
def fishery(backend: Any, copies: int, rounds: int, seed: int) -> dict[str, Any]:
    """No talk vs one talk step per round: per copy survival, over-use, final stock, messages."""
    out = {}
    for label, talk in (("no talk", 0), ("talk", 1)):
        scenario = _scenario("fishery", backend, rounds=rounds, **{"comms.talk_rounds": talk})
        records = cp.play_copies(scenario, copies, seed)
        out[label] = [{
            "survived": not any(s["collapsed"] for s in r["summaries"]),
            "rounds": len(r["actions"]),
            "over_use": float(1 - np.mean([v for row in r["cooperation"] for v in row])),
            "stock": [s["stock"] for s in r["summaries"]],
            "harvests": r["actions"],
            "messages": cp.unique_messages(r),
        } for r in records]
    return out


# ----- (b) and (c): the LLM against scripted partners -------------------------------------------
def partners(backend: Any, copies: int, rounds: int, seed: int, signature_copies: int, debias: bool = True) -> dict[str, Any]:
    """One engine: `signature_copies` copies against defect_once, then `copies` per alpha
    against random(p=alpha). Returns label -> list of (LLM moves, partner moves, P(C) per round).
    Without `debias` (--quick) the options are scored in one order only (half the prompts)."""
    from mas.scenario import AgentConfig

    scenario = _scenario("pd", backend, rounds=rounds, **{"agents.llm.policy.debias": str(debias).lower()})
    llm = scenario.agents[0]

    def partner(policy: dict[str, Any]) -> AgentConfig:
        return scenario.agents[1].model_copy(update={"policy": _spec(policy)})

    labels = ["defect_once"] * signature_copies + [f"alpha={a:g}" for a in ALPHAS for _ in range(copies)]
    rosters = [[llm, partner({"type": "defect_once", "round": DEFECTION_ROUND})]] * signature_copies
    rosters += [[llm, partner({"type": "random", "p": a})] for a in ALPHAS for _ in range(copies)]
    records = cp.play_copies(scenario, len(rosters), seed, rosters)
    out: dict[str, list] = {}
    for label, r in zip(labels, records):
        p_coop = [(d.get("llm") or {}).get("C") for d in r["distributions"]]
        out.setdefault(label, []).append({"llm": cp.moves(r, 0), "partner": cp.moves(r, 1), "p_cooperate": p_coop})
    return out


def _spec(policy: dict[str, Any]) -> Any:
    from mas import registry

    return registry.policy_spec_model(policy["type"]).model_validate(policy)


# ----- (d) guess two-thirds -------------------------------------------------------------------
def two_thirds(backend: Any, copies: int, rounds: int, seed: int) -> list[list[float]]:
    """Per copy: the mean number chosen in each round."""
    records = cp.play_copies(_scenario("two_thirds", backend, rounds=rounds), copies, seed)
    return [[float(np.mean([float(x) for x in row])) for row in r["actions"]] for r in records]


# ----- the whole experiment ----------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from mas.agents.llm.retarget import backend_from_options

    args = g.parse(argv, __doc__.splitlines()[0], seeds=1, quick_seeds=1, folder=FOLDER, options=_options)
    if args.rewrite:
        return write(args.out, _stored(args.out))
    backend = backend_from_options(args.llm_url, args.llm_model, None)
    model = f"{args.llm_model} at {args.llm_url}" if args.llm_url else (args.llm_model or "embedded SmolLM2-135M-Instruct (local, CPU)")
    budget = QUICK if args.quick else FULL
    data: dict[str, Any] = {"model": model, "budget": budget, "seeds": args.seeds, "seconds": {}}
    runs: dict[str, list] = {"fishery": [], "partners": [], "two_thirds": []}
    parts = [args.only] if args.only else list(runs)
    for seed in range(args.seeds):
        start = time.perf_counter()
        if "fishery" in parts:
            runs["fishery"].append(fishery(backend, *budget["fishery"], seed))
            _progress("fishery", seed, start)
        if "partners" in parts:
            runs["partners"].append(partners(backend, budget["sweep"][0], max(budget["sweep"][1], budget["signature"][1]), seed,
                                             budget["signature"][0], debias=not args.quick))
            _progress("prisoner's dilemma partners", seed, start)
        if "two_thirds" in parts:
            runs["two_thirds"].append(two_thirds(backend, *budget["two_thirds"], seed))
            _progress("guess two-thirds", seed, start)
        data["seconds"][seed] = round(time.perf_counter() - start, 1)
    data["runs"] = runs
    if args.only:  # one part of several processes: --rewrite merges the parts
        (args.out / f"part-{args.only}.json").write_text(json.dumps(data, indent=1, default=float), encoding="utf-8")
        return data
    return write(args.out, data)


def _stored(out: Path) -> dict[str, Any]:
    """results.json of `out`, or the parts that `--only` runs left there, merged."""
    if (out / "results.json").exists():
        return json.loads((out / "results.json").read_text(encoding="utf-8"))
    data: dict[str, Any] = {}
    for path in sorted(out.glob("part-*.json")):
        part = json.loads(path.read_text(encoding="utf-8"))
        name = path.stem[len("part-"):]
        if not data:
            data = {**part, "seconds": {}}
        data["runs"][name] = part["runs"][name]
        data["seconds"][name] = part["seconds"]
    return data


def write(out: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Summarise `data` (what `main` played: model, budget, runs) into the table, figure and JSON.
    `python run.py --rewrite` redoes this from a stored results.json without playing again."""
    result = summarise(data["runs"])
    data["summary"] = result
    _figure(result, out, data["model"])
    g.write_results(out, f"LLM agents in social dilemmas and guess two-thirds ({data['model']})", _rows(result, data["model"]),
                    notes=NOTES, data=data)
    return {"model": data["model"], "runs": data["runs"], "summary": result}


def _progress(what: str, seed: int, start: float) -> None:
    sys.stderr.write(f"seed {seed}: {what} done at {time.perf_counter() - start:.0f} s\n")


def summarise(runs: dict[str, list]) -> dict[str, Any]:
    """Pool the copies of every seed: the figures of the results table."""
    fish = {label: [c for run in runs["fishery"] for c in run[label]] for label in ("no talk", "talk")}
    games: dict[str, list] = {}
    for run in runs["partners"]:
        for label, items in run.items():
            games.setdefault(label, []).extend(items)
    pairs = {label: [(x["llm"], x["partner"]) for x in items] for label, items in games.items()}
    choices = np.asarray([row for run in runs["two_thirds"] for row in run])  # [copies, rounds]
    return {
        "fishery": {label: {"survival": g.share_interval(sum(c["survived"] for c in cs), len(cs)),
                            "over_use": g.mean_interval([c["over_use"] for c in cs], 0.0, 1.0),
                            "messages": sum(len(c["messages"]) for c in cs), "copies": len(cs)} for label, cs in fish.items()},
        "signature": cp.after_one_defection(pairs["defect_once"], DEFECTION_ROUND),
        "signature_probability": cp.after_one_defection([(x["p_cooperate"], None) for x in games["defect_once"]], DEFECTION_ROUND),
        "signature_games": len(pairs["defect_once"]),
        "sweep": {label: {**cp.behaviour(pairs[label]),
                          "partner_cooperation": float(np.mean([m for _, o in pairs[label] for m in o])),
                          "llm_cooperation": float(np.mean([m for a, _ in pairs[label] for m in a]))}
                  for label in pairs if label.startswith("alpha=")},
        "two_thirds": [g.mean_interval(choices[:, r].tolist(), 0.0, 100.0) if len(choices) > 1 else (float(choices[0, r]),) * 3
                       for r in range(choices.shape[1])],
    }


def _rows(s: dict[str, Any], model: str) -> list[dict[str, Any]]:
    fish, sig = s["fishery"], s["signature"]
    rows = [
        {"experiment": "fishery (GovSim)", "measure": f"survival, no talk / talk ({fish['talk']['copies']} copies each)",
         "mas": f"{g.fmt(fish['no talk']['survival'])} / {g.fmt(fish['talk']['survival'])}",
         "reference": "most LLMs collapse the fishery; talk helps strong models"},
        {"experiment": "fishery (GovSim)", "measure": "over-use (requests above the sustainable share), no talk / talk",
         "mas": f"{g.fmt(fish['no talk']['over_use'])} / {g.fmt(fish['talk']['over_use'])}", "reference": "-"},
        {"experiment": "grim trigger (Akata)", "measure": f"P(C) right after the one defection / later / before ({s['signature_games']} games)",
         "mas": f"{sig['after']:.2f} / {sig['later']:.2f} / {sig['before']:.2f}",
         "reference": "GPT-4: 0 after, 0 later (never cooperates again), 1 before"},
        {"experiment": "grim trigger (Akata)", "measure": "the model's mean P(C) (its stored distribution): after / later / before",
         "mas": " / ".join(f"{s['signature_probability'][k]:.2f}" for k in ("after", "later", "before")), "reference": "as above"},
    ]
    for label, m in s["sweep"].items():
        rows.append({"experiment": "nicer than humans (Fontana)", "measure": f"{label}: nice / forgive / retaliate / trouble / emulate",
                     "mas": " / ".join(f"{m[k]:.2f}" for k in ("niceness", "forgiveness", "retaliation", "troublemaking", "emulation")),
                     "reference": "LLMs: nice ~1, forgiving, low troublemaking (humans less so)"})
    curve = s["two_thirds"]
    rows.append({"experiment": "guess two-thirds (GAMA-Bench)", "measure": "mean choice, first / last round",
                 "mas": f"{g.fmt(curve[0], 1)} / {g.fmt(curve[-1], 1)}",
                 "reference": "people ~36 then falling; Nash 0; GPT-4o falls over 20 rounds"})
    return rows


NOTES = """All agents decide in score mode: the softmax (temperature 1) of the log-likelihoods of the legal
actions' names, sampled; the prisoner's dilemma averages the two orders of the options (debias), since
small models pick by position (`--quick` scores one order only). Intervals: Wilson for survival (a share of copies), Student-t across
copies otherwise; the behaviour measures pool every game of an alpha (definitions in copies.py; NaN:
the occasion never arose). results.json holds every copy's moves, stocks, messages and the LLM's
probability of cooperating in every round."""


def _figure(s: dict[str, Any], out: Path, model: str) -> None:
    fig, (a1, a2, a3, a4) = g.figure(ncols=4, width=3.6, height=3.4)
    labels = list(s["fishery"])
    for i, label in enumerate(labels):
        for j, key in enumerate(("survival", "over_use")):
            mean, low, high = s["fishery"][label][key]
            a1.bar(i + 0.4 * j, mean, 0.38, yerr=[[mean - low], [high - mean]], color=("#0072B2", "#D55E00")[j],
                   label=("survival", "over-use")[j] if i == 0 else None)
    a1.set_xticks([0.2, 1.2], labels)
    a1.set_ylim(0, 1.05)
    a1.set_title("fishery", fontsize=9)
    a1.legend(fontsize=7)
    sig = s["signature"]
    a2.bar(range(3), [sig["before"], sig["after"], sig["later"]], color="#009E73")
    a2.set_xticks(range(3), [f"rounds 0-{DEFECTION_ROUND}", f"round {DEFECTION_ROUND + 1}", "later"])
    a2.set_ylim(0, 1.05)
    a2.set_ylabel("P(LLM cooperates)")
    a2.set_title(f"after one defection (round {DEFECTION_ROUND})", fontsize=9)
    sweep = s["sweep"]
    alphas = [float(k.split("=")[1]) for k in sweep]
    for key, color in zip(("niceness", "forgiveness", "retaliation", "troublemaking", "emulation"),
                          ("#0072B2", "#009E73", "#D55E00", "#CC79A7", "#E69F00")):
        a3.plot(alphas, [sweep[k][key] for k in sweep], "o-", color=color, label=key, ms=3)
    a3.set_xlabel("partner's P(cooperate), alpha")
    a3.set_ylim(-0.05, 1.05)
    a3.legend(fontsize=6)
    a3.set_title("behaviour vs random partners", fontsize=9)
    curve = np.asarray(s["two_thirds"])
    rounds = np.arange(1, len(curve) + 1)
    a4.plot(rounds, curve[:, 0], "o-", color="#0072B2", label="LLM players")
    a4.fill_between(rounds, curve[:, 1], curve[:, 2], color="#0072B2", alpha=0.2)
    a4.axhline(50, color="#999999", ls=":", label="uniform random")
    a4.plot([1], [36], "o", color="#E69F00", label="people, round 1")
    a4.axhline(0, color="#000000", lw=0.8)
    a4.set_ylim(-2, 100)
    a4.set_xlabel("round")
    a4.set_title("guess two-thirds: mean choice", fontsize=9)
    a4.legend(fontsize=6)
    fig.suptitle(f"model: {model}", fontsize=9)
    g.save(fig, out)


if __name__ == "__main__":
    from mas.errors import MasError

    try:
        print(main().get("summary", "part written"))
    except MasError as exc:  # a bad --llm-url or --llm-model: one line, no traceback
        sys.exit(f"error: {exc}")
