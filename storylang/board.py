"""`storyc board`: the storyboard people print. One panel per shot (its card, rendered still or
the first frame it uses of a video), with shot number, length, framing, camera move, action,
dialogue and narration; scene headings break the board into sections. PDF with reportlab,
or a single self-contained HTML page (pictures inlined), from the built edit list.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from PIL import Image

from storylang import __version__, atomic
from storylang import vocabulary as vocab
from storylang.diagnostics import OneLineError
from storylang.film import Film, Shot
from storylang.timeline import Clip, Timeline
from storylang.probe import limit_pillow

limit_pillow()  # pictures from scripts and servers: a bomb is refused, never decoded

THUMB_WIDTH = 640
COLUMNS, ROWS = 3, 2  # panels on a landscape page


class BoardError(OneLineError):
    pass


@dataclass
class Panel:
    shot: str
    seconds: float
    framing: str  # "medium on MARA"
    camera: str  # "orbit left slow"
    action: str
    lines: list[tuple[str, str]]  # (who: a name with its parenthetical, or "narration"; the words)
    picture: Path


@dataclass
class Section:
    heading: str
    panels: list[Panel] = field(default_factory=list)


@dataclass
class Sheet:
    """A character on the board's first page: the face every shot of theirs is made from."""

    name: str
    rows: list[str]  # look, voice, LoRAs, where the picture comes from
    picture: Path | None  # None: a sheet not rendered yet
    missing: str = ""  # what to do about that


def sheets(film: Film, root: Path, sheets_dir: Path, thumbs: Path) -> list[Sheet]:
    """The characters with a sheet or a reference image, each with its picture: the writer's
    reference, else the sheet last rendered (build/<film>/sheets/, written by storyc sheets and by
    ComfyUI builds). A sheet not rendered yet says how to render it."""
    from storylang.filenames import safe_stem

    out = []
    for c in film.characters:
        if c.sheet is None and c.reference is None:
            continue
        rows = [f"look: {c.look}"] if c.look else []
        rows.append(f"voice: {c.voice.id}")
        rows += [f"LoRA: {lo.file} {lo.model:g}" for lo in c.loras]
        picture, missing = None, ""
        if c.reference is not None:
            rows.append(f"reference: {c.reference.file}")
            picture = still_thumbnail(root / c.reference.file, thumbs)
        else:
            rows.append(f"sheet: {c.sheet}")
            found = sorted(sheets_dir.glob(f"{safe_stem(c.name)}.*")) if sheets_dir.is_dir() else []
            if found:
                picture = still_thumbnail(found[0], thumbs)
            else:
                missing = "not rendered yet: storyc sheets FILE --comfy URL"
        out.append(Sheet(c.name, rows, picture, missing))
    return out


def still_thumbnail(source: Path, thumbs: Path) -> Path:
    """A JPEG of an image, named by the file and its time (a rebuilt board reuses it)."""
    key = hashlib.sha256(f"{source.resolve()}|{source.stat().st_mtime_ns}|still|0".encode())
    target = thumbs / f"{key.hexdigest()[:20]}.jpg"
    if not target.exists():
        _save_thumbnail(Image.open(source), thumbs, target)
    return target


def camera_text(shot: Shot) -> str:
    words = []
    for m in shot.camera:
        parts = [m.move, m.direction] + ([m.speed] if m.move != "static" else [])
        words.append(" ".join(p for p in parts if p))
    return "; ".join(words) or "static"


def framing_text(shot: Shot) -> str:
    text = shot.framing + (f", {vocab.ANGLES[shot.angle][0]}" if shot.angle else "")
    return text + (" on " + " and ".join(shot.cast) if shot.cast else "")


def sections(film: Film, timeline: Timeline, root: Path, thumbs: Path, ffmpeg: str) -> list[Section]:
    clips = {c.shot: c for c in timeline.clips}
    out: list[Section] = []
    for shot in film.shots:
        heading = film.scenes[shot.scene].heading
        if not out or out[-1].heading != heading:
            out.append(Section(heading))
        clip = clips[shot.id]
        lines = [("narration" if ln.speaker is None else ln.speaker + (f" ({ln.parenthetical})" if ln.parenthetical else ""),
                  ln.text) for ln in shot.lines]
        out[-1].panels.append(Panel(
            shot=shot.id, seconds=float(Fraction(clip.frames) / timeline.fps), framing=framing_text(shot),
            camera=camera_text(shot), action=shot.action, lines=lines,
            picture=thumbnail(clip, root, thumbs, timeline.fps, ffmpeg)))
    return out


def thumbnail(clip: Clip, root: Path, thumbs: Path, fps: Fraction, ffmpeg: str) -> Path:
    """A JPEG of the panel's picture, named by what it shows (so a rebuilt board reuses it)."""
    source = root / clip.files[0]
    key = hashlib.sha256(f"{source.resolve()}|{source.stat().st_mtime_ns}|{clip.source}|{clip.source_in}".encode())
    target = thumbs / f"{key.hexdigest()[:20]}.jpg"
    if target.exists():
        return target
    if clip.source == "video":
        at = float(Fraction(clip.source_in) / fps)
        done = subprocess.run([ffmpeg, "-v", "error", "-ss", f"{at:.3f}", "-i", str(source), "-frames:v", "1",
                               "-f", "image2pipe", "-c:v", "png", "-"], capture_output=True)
        if done.returncode != 0 or not done.stdout:
            raise BoardError(f"{clip.files[0]}: no frame could be read for shot {clip.shot} "
                             f"({done.stderr.decode(errors='replace').strip()[-200:]}); rebuild the film")
        image = Image.open(io.BytesIO(done.stdout))
    else:
        image = Image.open(source)
    _save_thumbnail(image, thumbs, target)
    return target


def _save_thumbnail(image: Image.Image, thumbs: Path, target: Path) -> None:
    image = image.convert("RGB")
    image.thumbnail((THUMB_WIDTH, THUMB_WIDTH))
    thumbs.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(target) as tmp:
        image.save(tmp, "JPEG", quality=85)


# ---------------------------------------------------------------- PDF


def _fonts() -> tuple[str, str, str]:
    """Regular, bold and italic fonts for reportlab: DejaVu (every script's letters) if Pillow finds it."""
    from PIL import ImageFont
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    names = []
    for name, file in (("Board", "DejaVuSans.ttf"), ("Board-Bold", "DejaVuSans-Bold.ttf"),
                       ("Board-Italic", "DejaVuSans-Oblique.ttf")):
        try:
            path = ImageFont.truetype(file, 10).path
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, path))
            names.append(name)
        except (OSError, AttributeError):
            return "Helvetica", "Helvetica-Bold", "Helvetica-Oblique"
    return tuple(names)


def write_pdf(parts: list[Section], film: Film, target: Path, digest: str, cast: list[Sheet] = ()) -> int:
    """The board as a landscape A4 PDF, the characters' sheets first; returns the number of pages."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.utils import ImageReader, simpleSplit
    from reportlab.pdfgen import canvas

    regular, bold, italic = _fonts()
    W, H = landscape(A4)
    margin, gap = 32, 14
    col = (W - 2 * margin - (COLUMNS - 1) * gap) / COLUMNS
    pic_h = col * film.height / film.width
    text_h = 84
    panel_h = pic_h + 6 + text_h
    heading_h = 22

    with atomic.atomic_path(target) as tmp:
        c = canvas.Canvas(str(tmp), pagesize=(W, H), invariant=1)
        c.setTitle(f"{film.title}: storyboard")
        c.setAuthor(film.author)
        c.setCreator(f"storyc {__version__}")
        c.setSubject(f"script {digest}")
        page = [1]

        def header() -> float:
            c.setFont(regular, 8)
            c.setFillGray(0.35)
            c.drawString(margin, H - margin + 12, f"{film.title}" + (f" · {film.author}" if film.author else ""))
            c.drawRightString(W - margin, H - margin + 12, f"storyboard · page {page[0]}")
            c.setFillGray(0)
            return H - margin

        def new_page() -> float:
            c.showPage()
            page[0] += 1
            return header()

        def panel(p: Panel, x: float, top: float) -> None:
            c.drawImage(ImageReader(str(p.picture)), x, top - pic_h, col, pic_h)
            c.setLineWidth(0.5)
            c.rect(x, top - pic_h, col, pic_h)
            y = top - pic_h - 6 - 9
            c.setFont(bold, 9)
            c.drawString(x, y, f"SHOT {p.shot}")
            c.setFont(regular, 8)
            c.drawRightString(x + col, y, f"{p.seconds:.1f} s · {p.framing}"[:70])
            rows = [(italic, f"camera: {p.camera}")]
            if p.action:
                rows += [(regular, p.action)]
            rows += [(italic if who == "narration" else regular, f"{'(narration) ' if who == 'narration' else who + ': '}{text}")
                     for who, text in p.lines]
            _text_rows(c, rows, x, y - 11, col, text_h - 14, simpleSplit)

        y = header()
        if cast:  # the faces first: what every shot of theirs is made from
            c.setFont(bold, 11)
            c.drawString(margin, y - 14, "Characters")
            y -= heading_h
            for i in range(0, len(cast), COLUMNS):
                if y - panel_h < margin:
                    y = new_page()
                for j, sh in enumerate(cast[i:i + COLUMNS]):
                    _sheet_panel(c, sh, margin + j * (col + gap), y, (col, pic_h, text_h), (regular, bold, italic))
                y -= panel_h + gap
            y = new_page()
        for part in parts:
            if y - heading_h - panel_h < margin:
                y = new_page()
            c.setFont(bold, 11)
            c.drawString(margin, y - 14, part.heading)
            y -= heading_h
            for i in range(0, len(part.panels), COLUMNS):
                if y - panel_h < margin:
                    y = new_page()
                for j, p in enumerate(part.panels[i:i + COLUMNS]):
                    panel(p, margin + j * (col + gap), y)
                y -= panel_h + gap
        c.showPage()
        c.save()
    return page[0]


def _sheet_panel(c, sh: Sheet, x: float, top: float, size: tuple, fonts: tuple) -> None:
    """A character on the first page: the sheet (or a grey box saying how to render it), the name
    and the rows under it."""
    from reportlab.lib.utils import ImageReader, simpleSplit

    col, pic_h, text_h = size
    regular, bold, italic = fonts
    if sh.picture is not None:
        c.drawImage(ImageReader(str(sh.picture)), x, top - pic_h, col, pic_h, preserveAspectRatio=True)
    else:
        c.setFillGray(0.9)
        c.rect(x, top - pic_h, col, pic_h, fill=1, stroke=0)
        c.setFillGray(0.3)
        c.setFont(italic, 8)
        c.drawCentredString(x + col / 2, top - pic_h / 2, sh.missing)
        c.setFillGray(0)
    c.setLineWidth(0.5)
    c.rect(x, top - pic_h, col, pic_h)
    c.setFont(bold, 9)
    c.drawString(x, top - pic_h - 15, sh.name)
    _text_rows(c, [(regular, r) for r in sh.rows], x, top - pic_h - 26, col, text_h - 14, simpleSplit)


def _text_rows(c, rows, x: float, y: float, width: float, height: float, split) -> None:
    """Wrapped rows of text under a panel; what does not fit ends in an ellipsis."""
    size, leading = 8, 9.5
    lines = [(font, line) for font, text in rows for line in split(text, font, size, width)]
    room = max(int(height // leading), 1)
    if len(lines) > room:
        lines = lines[:room]
        font, last = lines[-1]
        lines[-1] = (font, last[: max(len(last) - 2, 0)] + " …")
    for font, line in lines:
        c.setFont(font, size)
        c.drawString(x, y, line)
        y -= leading


# ---------------------------------------------------------------- HTML


def write_html(parts: list[Section], film: Film, target: Path, digest: str, origin: dict | None = None,
               cast: list[Sheet] = ()) -> None:
    """The board as one HTML page with its pictures inlined (it can be mailed or printed as it is)."""
    import jinja2

    from storylang.resources import templates_dir

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), autoescape=True)

    def data_uri(path: Path) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")

    html = env.get_template("board/board.html.j2").render(
        film=film, sections=parts, cast=cast, picture=data_uri, version=__version__, digest=digest,
        aspect=f"{film.width} / {film.height}",
        provenance=json.dumps(origin or {}, sort_keys=True, ensure_ascii=False).replace("</", "<\\/"))
    atomic.write_text(target, html)
