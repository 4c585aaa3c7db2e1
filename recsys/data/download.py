"""``recsys-data``: fetch public datasets into the data folder, checked against pinned hashes.

Only datasets whose publishers offer a public download are here (MovieLens, Last.fm). Each
archive is verified against a pinned checksum before anything is unpacked; a mismatch or a
network failure leaves nothing behind. ``RECSYS_DOWNLOAD_MIRROR`` replaces the publisher's
base URL (a mirror, or a local server in tests).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from recsys.cli import user_errors
from recsys.errors import RecsysError

BASE_URL = "https://files.grouplens.org/datasets"


class DownloadError(RecsysError):
    """A download failed: offline, a server error or a checksum mismatch."""


@dataclass(frozen=True)
class Source:
    """A downloadable archive: ``{base}/{path}``, its checksum as ``algo:hexdigest``, and the
    folder under the data directory it unpacks into (holding ``marker``)."""

    path: str
    checksum: str
    folder: str
    marker: str
    terms: str


# Pinned checksums: ml-100k's md5 is the one GroupLens publishes beside the zip; the sha256 of
# ml-latest-small and of the Last.fm zip were recorded by others who downloaded them.
SOURCES = {
    "ml100k": Source(
        "movielens/ml-100k.zip",
        "md5:0e33842e24a9c977be4e0107933c0723",
        "ml-100k",
        "u.data",
        "GroupLens: research use only, no redistribution",
    ),
    "ml_latest_small": Source(
        "movielens/ml-latest-small.zip",
        "sha256:696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        "ml-latest-small",
        "ratings.csv",
        "GroupLens: research use",
    ),
    "lastfm2k": Source(
        "hetrec2011/hetrec2011-lastfm-2k.zip",
        "sha256:6738f48195667ff03caaab4d32ca9a3133d8cc026b7c3cdaf6ce1010e913c59c",
        "hetrec2011-lastfm-2k",
        "user_artists.dat",
        "Last.fm: non-commercial use",
    ),
}


def url_of(source: Source) -> str:
    base = os.environ.get("RECSYS_DOWNLOAD_MIRROR", BASE_URL).rstrip("/")
    return f"{base}/{source.path}"


def download(
    name: str,
    data_dir: str | Path,
    force: bool = False,
    sources: dict[str, Source] = SOURCES,
    timeout: float = 30.0,
    progress=sys.stderr,
) -> Path:
    """Fetch, verify and unpack dataset ``name`` into ``data_dir``; returns its folder."""
    if name not in sources:
        raise RecsysError(f"no download for {name!r}; available: {', '.join(sorted(sources))}")
    src = sources[name]
    data_dir = Path(data_dir)
    target = data_dir / src.folder
    if (target / src.marker).is_file() and not force:
        print(f"{name}: already in {target} (use --force to fetch again)", file=progress)
        return target
    data_dir.mkdir(parents=True, exist_ok=True)
    url = url_of(src)
    algo, expected = src.checksum.split(":", 1)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / Path(src.path).name
        digest = _fetch(url, archive, algo, timeout, progress)
        if digest != expected:
            raise DownloadError(
                f"{url}: checksum mismatch: expected {algo} {expected}, got {digest}; the "
                "download was deleted. The file on the server is not the pinned one."
            )
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(archive) as z:
                z.extractall(unpacked)
        except zipfile.BadZipFile as e:
            raise DownloadError(f"{url}: not a zip archive ({e})") from e
        entries = [p for p in unpacked.iterdir() if p.name != "__MACOSX"]
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else unpacked
        if not (root / src.marker).is_file():
            raise DownloadError(f"{url}: the archive has no {src.marker}")
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(root), target)
    print(f"{name}: {target} ({src.terms})", file=progress)
    return target


def _fetch(url: str, dest: Path, algo: str, timeout: float, progress) -> str:
    h = hashlib.new(algo)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, dest.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=url.rsplit("/", 1)[-1], file=progress, leave=False)  # fmt: skip
            with bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: the server answered {e.code} {e.reason}") from e
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(
            f"cannot download {url} ({reason}): this machine seems to be offline. Fetch the "
            "file elsewhere and unzip it into the data folder, or set RECSYS_DOWNLOAD_MIRROR "
            "to a reachable copy."
        ) from e
    return h.hexdigest()


SIMULATOR_FLAGS = (
    ("readers", int, 20_000, "readers (default 20000)"),
    ("articles", int, 3_000, "articles (default 3000)"),
    ("days", int, 30, "days of log (default 30)"),
    ("sessions-per-reader", float, 0.5, "mean sessions per reader (default 0.5: most readers "
     "come once or twice, about 15%% of those who come have 5 articles or more)"),
    ("policy", str, "most_recent", "the site's widget: most_recent, most_popular or random"),
    ("until-day", float, None, "only views before this day, and the articles published by "
     "then (default: all)"),
    ("seed", int, 0, "the simulation's seed"),
)  # fmt: skip


def simulate_publisher(args: argparse.Namespace) -> None:
    """``recsys-data simulate-publisher``: ``PublisherSimulator.write_export``."""
    from recsys.data.datasets.publisher_sim import PublisherSimulator

    try:
        sim = PublisherSimulator(
            n_readers=args.readers, n_articles=args.articles, days=args.days,
            sessions_per_reader=args.sessions_per_reader, policy=args.policy,
            initial_articles=min(200, args.articles), seed=args.seed,
        )  # fmt: skip
    except ValueError as e:
        raise RecsysError(f"recsys-data simulate-publisher: {e}") from None
    out = sim.write_export(args.folder, args.until_day)
    print(
        f"wrote {out['views_written']:,} views to {out['views']} and "
        f"{out['articles_written']:,} articles to {out['articles']}"
    )


@user_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="recsys-data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch a public dataset into the data folder")
    dl.add_argument("name", choices=sorted(SOURCES))
    dl.add_argument(
        "--data-dir",
        default=os.environ.get("RECSYS_DATA_DIR", "data"),
        help="where datasets live (default: $RECSYS_DATA_DIR, else ./data)",
    )
    dl.add_argument("--force", action="store_true", help="fetch even if already present")
    sub.add_parser("list", help="the datasets that can be downloaded")
    sim = sub.add_parser(
        "simulate-publisher",
        help="write a simulated publisher export (views.csv, articles.csv) into a folder",
    )
    sim.add_argument("folder", help="where views.csv and articles.csv go")
    for flag, kind, default, what in SIMULATOR_FLAGS:
        sim.add_argument(f"--{flag}", type=kind, default=default, help=what)
    args = parser.parse_args(argv)
    if args.command == "simulate-publisher":
        simulate_publisher(args)
        return
    if args.command == "list":
        for name, src in sorted(SOURCES.items()):
            print(f"{name:16} {url_of(src)}  ({src.terms})")
        return
    download(args.name, args.data_dir, force=args.force)


if __name__ == "__main__":
    main()
