"""``recsys-serve ckpt_path=... [items=...] host=127.0.0.1 port=8000``: the widget's HTTP service
over ``recsys.serve.Recommender`` (the checkpoint and item table loaded once, at start). Needs
the ``serve`` extra (Starlette and uvicorn): ``pip install -e ".[serve]"``.

Endpoints (GET with a query string, or POST with a JSON object of the same names); every answer
is JSON, the same dict as the in-process call:

    GET /recommend?user=r17&k=10&now=2024-03-01T12:00&fresh_days=2&topics=sport,politics
    GET /recommend?history=a1,a7&context=a7&exclude_topics=weather
    GET /related?item=a7&k=5
    POST /recommend_users  {"users": ["r17", "r18"], "k": 10}  ->  {"results": [...]}
    GET /health

``/recommend`` takes ``Recommender.recommend``'s parameters: ``user`` (a known reader) or
``history`` (a new reader's articles, oldest first; may be empty with ``context``), ``context``
(the article being read), ``k``, ``now`` (unix seconds or ISO 8601), ``fresh_days``,
``topics``, ``exclude_topics``, ``exclude_read`` (true/false), ``strengths``, ``confidences``
and ``features`` (in a query string ``features.dwell=30,400,``: one value per history article,
an empty one unknown). ``/related``: ``item``, ``k`` and the filters ``now``, ``fresh_days``,
``topics``, ``exclude_topics``. ``/recommend_users`` (an export, scored in batches):
``users`` and the options of ``/recommend`` that apply to known readers. In a query string a
list is comma-separated and/or repeated (``topics=a,b`` = ``topics=a&topics=b``); an id with a
comma in it needs POST.

Errors are one line of JSON, ``{"error": "..."}``, never a traceback, and the service keeps
running: 404 for an id that neither the model nor the item table knows (a reader: send the
reader's ``history`` instead), 400 for any other bad request (a bad ``k``, ``fresh_days``
without ``now``, an unknown parameter, a malformed body), 404/405 for an unknown path or
method, 413 for a body over ``max_body_mb``, 500 for a bug of ours (its traceback goes to the
server's log only).

Requests are scored one at a time (torch uses the cores within one request); ``/health``
answers while a long request runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

import hydra
from omegaconf import DictConfig

from recsys.cli import hydra_app, user_errors
from recsys.config import CONFIG_DIR
from recsys.errors import RecsysError, UnknownIdError
from recsys.serve import Recommender

log = logging.getLogger(__name__)

INSTALL = 'pip install -e ".[serve]"'
FILTERS = ("now", "fresh_days", "topics", "exclude_topics")
PARAMETERS = {  # endpoint -> the parameters it takes
    "recommend": ("user", "history", "context", "k", *FILTERS, "exclude_read", "strengths",
                  "confidences", "features"),
    "related": ("item", "k", *FILTERS),
    "recommend_users": ("users", "context", "k", *FILTERS, "exclude_read"),
}  # fmt: skip
ID_LISTS = ("history", "users", "topics", "exclude_topics")
FLOAT_LISTS = ("strengths", "confidences")


class BadRequest(RecsysError):
    """A request the service cannot read (HTTP ``status``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def require_extra() -> None:
    """RecsysError naming the install command when Starlette or uvicorn is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise RecsysError(
            f"recsys-serve needs the serve extra ({e.name} is not installed): {INSTALL}"
        ) from None


# -- parameters ---------------------------------------------------------------------------
def _id_list(name: str, value) -> list:
    """A list of ids (or topics): a JSON list, or comma-separated text."""
    if isinstance(value, str):
        return [part for part in value.split(",") if part != ""]
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return value
    raise BadRequest(f"{name} must be a list of ids (strings or integers), got {value!r}")


def _number(name: str, value, kind=float, none_ok: bool = False):
    """``kind`` (int or float) from JSON or text; None (JSON null, empty text) if allowed."""
    if none_ok and (value is None or value == ""):
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # text that is no number: said below
            value = kind(value)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok or not math.isfinite(value):
        what = "an integer" if kind is int else "a finite number"
        raise BadRequest(f"{name} must be {what}, got {value!r}")
    return kind(value)


def _float_list(name: str, value, none_ok: bool = False) -> list:
    """Numbers: a JSON list, or comma-separated text (empty entries None if ``none_ok``)."""
    if isinstance(value, str):
        value = value.split(",") if value != "" else []
    if not isinstance(value, list):
        raise BadRequest(f"{name} must be a list of numbers, got {value!r}")
    return [_number(name, v, float, none_ok) for v in value]


def _boolean(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise BadRequest(f"{name} must be true or false, got {value!r}")


def _time(value):
    """``now``: unix seconds (a number, or text that reads as one), else ISO 8601 text (read
    by ``Recommender``, which says if it is neither)."""
    if isinstance(value, str):
        try:
            return _number("now", value)
        except BadRequest:
            return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number("now", value)
    raise BadRequest(f"now must be unix seconds or an ISO 8601 time, got {value!r}")


def parse_options(endpoint: str, raw: dict) -> dict:
    """Keyword arguments of the ``Recommender`` call of ``endpoint`` from ``raw`` (a JSON
    object, or a query string read by ``query_values``), typed and checked; BadRequest naming
    the parameter otherwise."""
    allowed = PARAMETERS[endpoint]
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise BadRequest(
            f"unknown parameter(s) {', '.join(unknown)} for /{endpoint}; it takes "
            f"{', '.join(allowed)}"
        )
    out = {}
    for name, value in raw.items():
        if value is None:
            continue  # JSON null: not given
        if name in ID_LISTS:
            out[name] = _id_list(name, value)
        elif name in FLOAT_LISTS:
            out[name] = _float_list(name, value)
        elif name == "features":
            if not isinstance(value, dict):
                raise BadRequest("features must map a name to values, e.g. {'dwell': [30]}")
            out[name] = {str(k): _float_list(f"features.{k}", v, True) for k, v in value.items()}
        elif name == "k":
            out[name] = _number(name, value, int)
        elif name == "fresh_days":
            out[name] = _number(name, value)
        elif name == "now":
            out[name] = _time(value)
        elif name == "exclude_read":
            out[name] = _boolean(name, value)
        elif isinstance(value, str | int) and not isinstance(value, bool):  # user, item, context
            out[name] = value
        else:
            raise BadRequest(f"{name} must be one id (a string or an integer), got {value!r}")
    return out


def query_values(items: list[tuple[str, str]]) -> dict:
    """A query string's ``(name, value)`` pairs as ``parse_options`` reads them: lists
    repeated and/or comma-separated are joined, ``features.<name>=...`` grouped into
    ``features``; any other parameter given twice is a BadRequest."""
    out: dict = {}
    for name, value in items:
        if name.startswith("features."):
            features = out.setdefault("features", {})
            if name[9:] in features:
                raise BadRequest(f"{name} is given twice")
            features[name[9:]] = value
        elif name in ID_LISTS or name in FLOAT_LISTS:
            out[name] = f"{out[name]},{value}" if name in out else value
        elif name in out:
            raise BadRequest(f"{name} is given twice: give it once")
        else:
            out[name] = value
    return out


# -- the app ------------------------------------------------------------------------------
def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in str(message).split("\n") if part.strip())


def create_app(rec: Recommender, max_body_mb: float = 8.0, checkpoint: str | None = None):
    """The Starlette app serving ``rec`` (see the module)."""
    require_extra()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()  # one request scored at a time; torch uses the cores within it
    limit = int(max_body_mb * 2**20)
    calls: dict[str, Callable[[dict], dict]] = {
        "recommend": lambda o: rec.recommend(**o),
        "related": lambda o: rec.related(_pop_required(o, "item", "related"), **o),
        "recommend_users": lambda o: {
            "results": rec.recommend_users(_pop_required(o, "users", "recommend_users"), **o)
        },
    }

    def error(message: str, status: int) -> JSONResponse:
        return JSONResponse({"error": _one_line(message)}, status_code=status)

    async def read(request: Request, endpoint: str) -> dict:
        if request.method == "GET":
            return query_values(request.query_params.multi_items())
        size, chunks = 0, []
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"the request body is over {max_body_mb:g} MiB", 413)
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks) or b"{}")
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"the body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise BadRequest(f"the body must be a JSON object of /{endpoint}'s parameters")
        if request.query_params:
            raise BadRequest("give the parameters either in the query string or in the body")
        return body

    def scored(endpoint: str, options: dict) -> dict:
        with lock:
            return calls[endpoint](options)

    def endpoint_for(name: str):
        async def endpoint(request: Request) -> JSONResponse:
            try:
                options = parse_options(name, await read(request, name))
                return JSONResponse(await run_in_threadpool(scored, name, options))
            except UnknownIdError as e:
                return error(str(e), 404)
            except BadRequest as e:
                return error(str(e), e.status)
            except RecsysError as e:
                return error(str(e), 400)
            except Exception as e:  # a bug of ours: its trace to the log, one line to the client
                log.exception("%s %s failed", request.method, request.url)
                return error(f"internal error ({type(e).__name__}); see the service's log", 500)

        return endpoint

    started = time.time()

    async def health(request: Request) -> JSONResponse:
        users = rec.model.user_ids
        return JSONResponse({
            "status": "ok",
            "model": type(rec.model).__name__,
            "checkpoint": checkpoint,
            "readers": 0 if users is None else len(users),
            "articles": len(rec.item_ids),
            "new_articles": len(rec.item_ids) - rec.n_known,
            "uptime_s": round(time.time() - started, 1),
        })  # fmt: skip

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(f"{exc.detail}: {request.method} {request.url.path}", exc.status_code)

    routes = [Route("/health", health, methods=["GET"])]
    routes += [Route(f"/{name}", endpoint_for(name), methods=["GET", "POST"]) for name in calls]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _pop_required(options: dict, name: str, endpoint: str):
    if name not in options:
        raise BadRequest(f"/{endpoint} needs {name}=...")
    return options.pop(name)


# -- running it ---------------------------------------------------------------------------
def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: a free port); RecsysError if it cannot be. Made
    with the protocol number getaddrinfo gives (IPPROTO_TCP, not 0): asyncio sets TCP_NODELAY
    only on connections of such sockets, and without it every answer written in two parts
    (headers, then body) waits about 40 ms for the client's delayed ACK."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        raise RecsysError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def server_for(app, log_level: str = "info", access_log: bool = True, **config):
    """A uvicorn ``Server`` for ``app`` (run it with ``.run(sockets=[listening_socket(...)])``);
    ``config``: more of ``uvicorn.Config``'s settings (e.g. ``timeout_keep_alive``)."""
    import uvicorn

    config = uvicorn.Config(
        app, log_level=log_level, access_log=access_log, lifespan="off", **config
    )
    return uvicorn.Server(config)


@contextlib.contextmanager
def serving_in_thread(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """``app`` served from a background thread of this process (tests, benchmarks); yields its
    base URL (``http://127.0.0.1:<port>``) once it accepts connections, and stops it after."""
    sock = listening_socket(host, port)
    # log_config=None: uvicorn leaves the process's logging as it is (its own dictConfig
    # would close every handler of the host process); its warnings go to the root logger
    server = server_for(app, log_level="warning", access_log=False, log_config=None)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP service did not start")
            time.sleep(0.01)
        name, bound = sock.getsockname()[:2]
        yield f"http://{'[' + name + ']' if ':' in name else name}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@hydra_app
@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="serve")
@user_errors
def main(cfg: DictConfig) -> None:
    require_extra()  # before the checkpoint loads: say at once what to install
    sock = listening_socket(cfg.host, int(cfg.port))
    rec = Recommender.load(
        cfg.ckpt_path,
        items=cfg.get("items"),
        trusted_packages=list(cfg.get("trusted_packages") or []),
        context_weight=cfg.context_weight,
    )
    app = create_app(rec, max_body_mb=cfg.max_body_mb, checkpoint=str(cfg.ckpt_path))
    print(
        f"serving {cfg.ckpt_path} ({len(rec.item_ids):,} articles) on "
        f"http://{cfg.host}:{int(cfg.port)}",
        file=sys.stderr,
    )
    # until SIGINT (Ctrl-C; uvicorn shuts down, then re-raises it: exit 0 without a traceback, as
    # uvicorn's own CLI) or SIGTERM (re-raised too: the process ends by the signal, shut down)
    with contextlib.suppress(KeyboardInterrupt):
        server_for(app, log_level=cfg.log_level, access_log=cfg.access_log).run(sockets=[sock])


if __name__ == "__main__":
    main()
