"""The widget's HTTP service (``recsys.service``, ``recsys-serve``) over loopback, with a real
HTTP client: the same lists as ``recsys.serve.Recommender`` in-process, for GET and POST; bad
requests answered with one line of JSON (404 for unknown ids, 400 otherwise) while the service
goes on; the console script's own errors (no extra, a port in use) as one line, exit 2."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from helpers import BIN, compose_config, logging_kept, one_line
from test_serve import export_overrides

from recsys.data.datasets.publisher_sim import DAY, START, PublisherSimulator
from recsys.runs.fit import train
from recsys.serve import Recommender
from recsys.service import create_app, serving_in_thread

TRAIN_DAYS, DAYS = 8, 10
USER, ITEM = "<a known reader>", "<a known article>"  # filled in from the model


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """ALS trained on a small simulated site's first 8 days, served with the CMS table of all
    10 (articles published since training included) from a thread of this process."""
    root = tmp_path_factory.mktemp("http")
    sim = PublisherSimulator(n_readers=400, n_articles=200, days=DAYS, initial_articles=40,
                             sessions_per_reader=3.0, seed=1)  # fmt: skip
    sim.write_export(root / "then", until_day=TRAIN_DAYS)
    sim.write_export(root / "now")
    overrides = [*export_overrides(root / "then"), "model=als", "model.factors=8",
                 "model.regularization=2", "trainer.max_epochs=3"]  # fmt: skip
    train(compose_config("train", overrides, root / "als"))
    ckpt = root / "als" / "checkpoints" / "last.ckpt"
    rec = Recommender.load(ckpt, items=root / "now" / "articles.csv")
    assert len(rec.item_ids) > rec.n_known  # new articles, scored from their content
    with serving_in_thread(create_app(rec, checkpoint=str(ckpt))) as url:
        yield rec, url, ckpt, root


def call(url: str, path: str, params: dict | None = None, method: str = "GET", body=None):
    """``(status, JSON answer, raw text)`` of one request; ``params`` as a query string (lists
    comma-separated, ``features`` as ``features.<name>=...``)."""
    query = []
    for name, value in (params or {}).items():
        if name == "features":
            query += [(f"features.{f}", ",".join("" if v is None else str(v) for v in values))
                      for f, values in value.items()]  # fmt: skip
        elif isinstance(value, list):
            query.append((name, ",".join(map(str, value))))
        else:
            query.append((name, str(value).lower() if isinstance(value, bool) else str(value)))
    target = f"{url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(target, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    return status, json.loads(text), text


def reader_cases(rec: Recommender) -> list[dict]:
    """``recommend`` options covering known and new readers, context, filters and weights."""
    users = list(rec.model.user_ids)
    known = rec.item_ids[: rec.n_known].tolist()
    new = rec.item_ids[rec.n_known :].tolist()
    topics = sorted(set(rec.topics.tolist()))
    now_s = START + DAYS * DAY
    now_iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_s))
    return [
        {"user": users[0], "k": 10},
        {"user": users[1], "k": 3, "exclude_read": False},
        {"user": users[2], "k": 5, "now": now_iso, "fresh_days": 2},
        {"user": users[3], "k": 5, "now": now_s - 3 * DAY, "fresh_days": 1.5},
        {"user": users[4], "k": 8, "topics": topics[:2]},
        {"user": users[5], "k": 8, "exclude_topics": topics[:3], "now": now_iso},
        {"user": users[6], "context": known[3]},
        {"history": known[:3], "k": 10},
        {"history": [known[5], new[0]], "context": new[1], "k": 6},
        {"context": known[7]},
        {"history": [], "context": new[2], "k": 4, "topics": topics[:4]},
        {"history": known[:3], "strengths": [1, 2, 0.5], "k": 5},
        {"history": known[:3], "features": {"dwell": [30.0, None, 400.0]}, "k": 5},
        {"history": known[:2], "confidences": [3.0, 1.0], "k": 5, "fresh_days": 4,
         "now": now_iso},
    ]  # fmt: skip


def test_recommend_answers_the_in_process_lists_over_get_and_post(served):
    rec, url, _, _ = served
    for options in reader_cases(rec):
        expected = rec.recommend(**options)
        assert expected["items"], options  # the case asks for something
        status, got, _ = call(url, "/recommend", options)
        assert (status, got) == (200, expected), options
        status, got, _ = call(url, "/recommend", method="POST", body=options)
        assert (status, got) == (200, expected), options


def test_the_filters_and_context_change_the_lists(served):
    """The cases above compare something: each option moves the list it is given to."""
    rec, url, _, _ = served
    user = rec.model.user_ids[0]
    plain = call(url, "/recommend", {"user": user})[1]["items"]
    for more in (
        {"now": START + DAYS * DAY, "fresh_days": 2},
        {"topics": sorted(set(rec.topics.tolist()))[:1]},
        {"context": rec.item_ids[9]},
    ):
        assert call(url, "/recommend", {"user": user, **more})[1]["items"] != plain, more


def test_related_and_the_batch_export_answer_the_in_process_lists(served):
    rec, url, _, _ = served
    now = START + DAYS * DAY
    for item, options in ((rec.item_ids[0], {"k": 5}), (rec.item_ids[-1], {}),
                          (rec.item_ids[4], {"k": 7, "now": now, "fresh_days": 3,
                                             "exclude_topics": [rec.topics[4]]})):  # fmt: skip
        expected = rec.related(item, **options)
        assert call(url, "/related", {"item": item, **options})[:2] == (200, expected)
        assert call(url, "/related", method="POST", body={"item": item, **options})[:2] == (
            200,
            expected,
        )
    users = [str(u) for u in rec.model.user_ids[:40]]
    for options in ({"k": 4}, {"k": 6, "now": now, "fresh_days": 2}):
        expected = {"results": rec.recommend_users(users, **options)}
        body = {"users": users, **options}
        assert call(url, "/recommend_users", method="POST", body=body)[:2] == (200, expected)
    assert call(url, "/recommend_users", {"users": users[:3], "k": 2})[:2] == (
        200,
        {"results": rec.recommend_users(users[:3], k=2)},
    )


@pytest.mark.parametrize(
    ("path", "params", "method", "body", "status", "words"),
    [
        ("/recommend", {"user": "nobody"}, "GET", None, 404, "unknown user id(s) 'nobody'"),
        ("/recommend", {"history": [ITEM, "zz9"]}, "GET", None, 404, "unknown item id(s) 'zz9'"),
        ("/recommend", {"context": "zz9"}, "GET", None, 404, "unknown item id(s) 'zz9'"),
        ("/related", {"item": "zz9"}, "GET", None, 404, "unknown item id(s) 'zz9'"),
        ("/recommend", {"user": USER, "k": 0}, "GET", None, 400, "k must be >= 1"),
        ("/recommend", {"user": USER, "k": "ten"}, "GET", None, 400, "k must be an integer"),
        ("/recommend", {"user": USER, "k": 2.5}, "POST", {}, 400, "k must be an integer"),
        ("/recommend", {"user": USER, "fresh_days": 2}, "GET", None, 400, "fresh_days needs now"),
        ("/recommend", {"user": USER, "fresh_days": "x"}, "GET", None, 400, "fresh_days must be"),
        ("/recommend", {"user": USER, "now": "yesterday"}, "GET", None, 400, "now='yesterday'"),
        ("/recommend", {"user": USER, "history": [ITEM]}, "GET", None, 400, "give either"),
        ("/recommend", {}, "GET", None, 400, "give user="),
        ("/recommend", {"user": USER, "fresh_day": 2}, "GET", None, 400, "unknown parameter"),
        ("/recommend", {"user": USER, "exclude_read": "maybe"}, "GET", None, 400, "true or false"),
        ("/recommend", {"history": [ITEM], "strengths": [1, 2]}, "GET", None, 400,
         "1 articles but 2 values of strengths"),
        ("/recommend", None, "POST", b"{not json", 400, "the body is not JSON"),
        ("/recommend", None, "POST", [1, 2], 400, "must be a JSON object"),
        ("/recommend", None, "POST", {"user": [USER]}, 400, "user must be one id"),
        ("/recommend", None, "POST", {"history": ITEM, "features": [1]}, 400, "features must"),
        ("/related", {"k": 3}, "GET", None, 400, "/related needs item="),
        ("/recommend_users", {"users": USER, "strengths": "1"}, "GET", None, 400,
         "unknown parameter(s) strengths"),
        ("/nowhere", None, "GET", None, 404, "Not Found: GET /nowhere"),
        ("/health", None, "DELETE", None, 405, "Method Not Allowed"),
    ],
)  # fmt: skip
def test_bad_requests_are_one_line_json_errors_and_the_service_goes_on(
    served, path, params, method, body, status, words
):
    rec, url, _, _ = served
    known = {USER: str(rec.model.user_ids[0]), ITEM: str(rec.item_ids[0])}

    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return known.get(value, value) if isinstance(value, str) else value

    params, body = fill(params), fill(body)
    if method == "POST" and params:  # the parameters as the JSON body
        params, body = None, {**params, **(body or {})}
    got_status, got, text = call(url, path, params, method, body)
    assert got_status == status, text
    assert list(got) == ["error"] and words in got["error"], text
    assert "\n" not in got["error"] and "Traceback" not in text
    assert call(url, "/health")[:2][0] == 200


def test_health_names_the_model_and_catalogue(served):
    rec, url, ckpt, _ = served
    status, got, _ = call(url, "/health")
    assert status == 200 and got["status"] == "ok" and got["model"] == "ALS"
    assert got["checkpoint"] == str(ckpt)
    assert got["articles"] == len(rec.item_ids)
    assert got["new_articles"] == len(rec.item_ids) - rec.n_known
    assert got["readers"] == len(rec.model.user_ids)


def test_answers_are_not_held_back_by_delayed_acks(served):
    """Connections get TCP_NODELAY: without it each answer (headers, then body: two writes)
    waited ~40 ms for the client's delayed ACK on a keep-alive connection."""
    _, url, _, _ = served
    connection = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlparse(url).port)
    seconds = []
    for _ in range(15):
        start = time.perf_counter()
        connection.request("GET", "/health")
        answer = connection.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["status"] == "ok"
        seconds.append(time.perf_counter() - start)
    connection.close()
    assert sorted(seconds)[len(seconds) // 2] < 0.025, seconds


def _serve_main(args: list[str], capsys) -> tuple[int, str]:
    """``recsys-serve``'s ``main`` in this process on ``args``: ``(exit status, stderr)``."""
    from hydra.core.global_hydra import GlobalHydra

    from recsys import service

    GlobalHydra.instance().clear()
    capsys.readouterr()
    argv, sys.argv = sys.argv, ["recsys-serve", *args]
    try:
        with logging_kept():
            service.main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
    return code, capsys.readouterr().err


def test_recsys_serve_without_the_extra_says_how_to_install_it(served, capsys, monkeypatch):
    _, _, ckpt, _ = served
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn: ImportError
    line = one_line(*_serve_main([f"ckpt_path={ckpt}"], capsys))
    assert "needs the serve extra (uvicorn is not installed)" in line
    assert 'pip install -e ".[serve]"' in line


def test_recsys_serve_on_a_port_in_use_is_one_line(served, capsys):
    _, _, ckpt, _ = served
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(*_serve_main([f"ckpt_path={ckpt}", f"port={port}"], capsys))
    assert f"cannot listen on 127.0.0.1:{port}" in line


@pytest.mark.slow  # a console script in a subprocess
def test_recsys_serve_serves_until_terminated(served, tmp_path):
    rec, _, ckpt, root = served
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    proc = subprocess.Popen(
        [str(BIN / "recsys-serve"), f"ckpt_path={ckpt}", f"items={root}/now/articles.csv",
         f"port={port}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, got, _ = call(url, "/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.2)
        assert status == 200 and got["articles"] == len(rec.item_ids)
        user = rec.model.user_ids[0]
        assert call(url, "/recommend", {"user": user, "k": 5})[1] == rec.recommend(user=user, k=5)
        assert call(url, "/recommend", {"user": "nobody"})[0] == 404
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Finished server process" in err, err
    assert '"GET /recommend?user=nobody HTTP/1.1" 404' in out  # the access log
