"""The built film's edit list as an editor's timeline, written with OpenTimelineIO and its adapters.

One clip per shot (and for the title and end cards) pointing at that shot's picture in the build
cache (a card, a render or the source clip), real transitions, a speech track and a music track,
a marker for every spoken line (its text) and every scene, and per-clip metadata under
`storylang`: shot id, `.story` file:line, content digest, seed, template and prompt.

OTIO transitions overlap the clips on either side (half into each, from the media's handles), so
a shot's clip is shortened by the half of each transition it takes part in: the track lasts
exactly as long as the film.
"""

from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from fractions import Fraction
from pathlib import Path

from storylang.diagnostics import OneLineError
from storylang.film import Film
from storylang.timeline import Timeline

FORMATS = {"otio": ("otio_json", ".otio"), "edl": ("cmx_3600", ".edl"), "fcp7": ("fcp_xml", ".xml"),
           "fcpx": ("fcpx_xml", ".fcpxml")}
OTIO_TRANSITIONS = {"dissolve": "SMPTE_Dissolve", "fade": "SMPTE_Dissolve", "wipe": "Custom_Transition"}


class ExportError(OneLineError):
    pass


def _rate(t: Timeline) -> float:
    return t.fps_num / t.fps_den


def _media(otio, root: Path, rel: str, frames: int, rate: float):
    path = (root / rel).resolve()
    return otio.schema.ExternalReference(
        target_url=path.as_uri(),
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                otio.opentime.RationalTime(max(frames, 1), rate)))


def _halves(t: Timeline) -> list[tuple[int, int]]:
    """Per clip: the frames its incoming and outgoing transitions take from it (half each side)."""
    out = []
    for i, clip in enumerate(t.clips):
        before = t.clips[i - 1].transition if i > 0 else None
        after = clip.transition if i + 1 < len(t.clips) else None
        head = before.frames - before.frames // 2 if before and before.kind != "cut" and before.frames else 0
        tail = after.frames // 2 if after and after.kind != "cut" and after.frames else 0
        out.append((head, tail))
    return out


def _script_name(name: str, root: Path) -> str:
    """A script's name relative to the film's folder (how the project names files), whatever the cwd."""
    try:
        return Path(name).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return name


def _shot_metadata(film: Film, shot_id: str, root: Path, prompts: dict) -> dict:
    from storylang.comfy.prompts import assemble_prompt, expanded_prompt

    shot = next((s for s in film.shots if s.id == shot_id), None)
    if shot is None:
        return {"shot": shot_id}
    expanded = prompts.get(shot.id)
    prompt = expanded_prompt(expanded) if expanded else assemble_prompt(film, shot, with_camera_words=False)
    where = f"{_script_name(shot.where.file, root)}:{shot.where.line}"
    return {"shot": shot.id, "where": where, "seed": shot.render.seed,
            "template": shot.render.template, "prompt": prompt.positive, "negative": prompt.negative}


def to_otio(t: Timeline, film: Film, root: Path, prompts: dict | None = None):
    """The timeline as an opentimelineio Timeline; `prompts`: the lock's expanded prompts by shot."""
    import opentimelineio as otio

    rate = _rate(t)
    rt = lambda n: otio.opentime.RationalTime(n, rate)  # noqa: E731 - frames at the film's rate
    timeline = otio.schema.Timeline(name=t.title, global_start_time=rt(0))
    timeline.metadata["storylang"] = {"script_digest": t.script_digest, "author": t.author,
                                      "format": f"{t.width}x{t.height}"}
    video = otio.schema.Track(name="picture", kind=otio.schema.TrackKind.Video)
    halves = _halves(t)
    reels = _reels([clip.shot for clip in t.clips])
    for i, clip in enumerate(t.clips):
        head, tail = halves[i]
        if head:
            tr = t.clips[i - 1].transition
            video.append(otio.schema.Transition(
                name=f"{tr.kind} {tr.direction or ''}".strip(),
                transition_type=OTIO_TRANSITIONS.get(tr.kind, "SMPTE_Dissolve"),
                # before the cut it shows the next clip's trimmed head, after it the last one's tail
                in_offset=rt(head), out_offset=rt(tr.frames - head)))
        name = {"#title": "title card", "#end": "end card"}.get(clip.shot, f"shot {clip.shot}")
        c = otio.schema.Clip(name=name, media_reference=_media(otio, root, clip.files[0],
                                                                 clip.source_in + clip.frames, rate),
                             source_range=otio.opentime.TimeRange(rt(clip.source_in + head),
                                                                  rt(clip.frames - head - tail)))
        meta = _shot_metadata(film, clip.shot, root, prompts or {}) if not clip.shot.startswith("#") else {"card": clip.shot}
        c.metadata["storylang"] = {**meta, "source": clip.source, "files": list(clip.files)}
        c.metadata["cmx_3600"] = {"reel": reels[clip.shot]}
        for s in t.speech:
            if s.shot == clip.shot:
                c.markers.append(otio.schema.Marker(
                    name=s.text, color=otio.schema.MarkerColor.GREEN,
                    marked_range=otio.opentime.TimeRange(rt(clip.source_in + head + max(s.start - clip.start - head, 0)),
                                                         rt(s.frames)),
                    metadata={"storylang": {"speaker": s.speaker or "narrator"}}))
        video.append(c)
    timeline.tracks.append(video)
    for name, items in (("speech", [(s.start, s.frames, s.file, s.text) for s in t.speech]),
                        ("music", [(m.start, m.end - m.start, m.file, Path(m.file).name) for m in t.music])):
        for i, lane in enumerate(_lanes(items)):
            timeline.tracks.append(_audio_track(otio, name if i == 0 else f"{name} {i + 1}", lane, root, rate,
                                                t.frames))
    for ch in t.chapters:
        timeline.tracks.markers.append(otio.schema.Marker(
            name=ch.title, color=otio.schema.MarkerColor.BLUE,
            marked_range=otio.opentime.TimeRange(rt(ch.start), rt(ch.end - ch.start))))
    return timeline


def _reels(shots: list[str]) -> dict[str, str]:
    """CMX3600 reel names: at most 8 characters (ASCII letters and digits), one per shot and never
    the same for two (`SH12A`; a long name cut to 8 that another already has ends in a number)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for shot in shots:
        if shot in out:
            continue
        if shot.startswith("#"):
            reel = {"#title": "TITLE", "#end": "END"}[shot]
        else:
            reel = ("SH" + "".join(ch for ch in shot.upper() if ch.isascii() and ch.isalnum()))[:8]
            n = 1
            while reel in taken or reel in ("TITLE", "END"):
                suffix = str(n)
                reel = reel[:8 - len(suffix)].ljust(8 - len(suffix), "X")[:8 - len(suffix)] + suffix
                n += 1
        out[shot] = reel
        taken.add(reel)
    return out


def _lanes(items: list[tuple]) -> list[list[tuple]]:
    """Items (start, frames, ...) on as few tracks as hold them without overlap: lines that overlap
    (across a transition, say) go on a second track; one track was laid end to end and moved the
    later line. Always at least one track."""
    lanes: list[list[tuple]] = [[]]
    ends = [0]
    for item in sorted(items):
        i = next((k for k, end in enumerate(ends) if end <= item[0]), None)
        if i is None:
            lanes.append([])
            ends.append(0)
            i = len(lanes) - 1
        lanes[i].append(item)
        ends[i] = item[0] + item[1]
    return lanes


def _audio_track(otio, name: str, items, root: Path, rate: float, total: int):
    track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
    at = 0
    for start, frames, file, label in sorted(items):
        if start > at:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(start - at, rate))))
        frames = min(frames, total - start)
        if frames <= 0:
            continue
        # its place on the track in its metadata: FCP7 XML's writer takes two clips that serialise
        # alike (a line said twice) for one and writes the second as a reference to the first
        track.append(otio.schema.Clip(name=label[:60], media_reference=_media(otio, root, file, frames, rate),
                                      source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                                           otio.opentime.RationalTime(frames, rate)),
                                      metadata={"storylang": {"start": start}}))
        at = start + frames
    return track


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")[:40] or "clip"


def gather_media(timeline, media: Path, target: Path, relative: bool) -> int:
    """Copy (or hard-link) every file the timeline points at into `media`, under stable names in the
    order of first use (`001_shot_1.png`, ...), and point the timeline there: relative to the
    timeline file when `relative` (the folder pair can be moved), else as file:// URLs of the
    copies. Returns how many files."""
    import os
    import shutil
    import urllib.parse
    import urllib.request

    from storylang import atomic

    media.mkdir(parents=True, exist_ok=True)
    placed: dict[str, Path] = {}
    for clip in timeline.find_clips():
        ref = clip.media_reference
        url = getattr(ref, "target_url", None)
        if not url or not url.startswith("file:"):
            continue
        source = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        if url not in placed:
            dest = media / f"{len(placed) + 1:03d}_{_slug(clip.name)}{source.suffix.lower()}"
            if not dest.exists():
                try:
                    os.link(source, dest)
                except OSError:
                    with atomic.atomic_path(dest, suffix=dest.suffix) as tmp:
                        shutil.copyfile(source, tmp)
            placed[url] = dest
        dest = placed[url]
        ref.target_url = (Path(os.path.relpath(dest, target.resolve().parent)).as_posix() if relative
                          else dest.resolve().as_uri())
    return len(placed)


def _fcp7_format(text: str, t: Timeline) -> str:
    """The sequence's <format> (frame size, rate, square pixels, progressive): the adapter writes an
    empty one, and Resolve and Premiere then take the size from the project instead of the film."""
    m = re.search(r"^( *)<format/>$", text, re.M)
    if m is None:
        return text
    pad, step = m.group(1), "    "
    rate = [f"<timebase>{round(t.fps_num / t.fps_den)}</timebase>", f"<ntsc>{'TRUE' if t.fps_den == 1001 else 'FALSE'}</ntsc>"]
    inner = [f"<width>{t.width}</width>", f"<height>{t.height}</height>", "<anamorphic>FALSE</anamorphic>",
             "<pixelaspectratio>square</pixelaspectratio>", "<fielddominance>none</fielddominance>", "<rate>",
             *[step + r for r in rate], "</rate>"]
    lines = [f"{pad}<format>", f"{pad}{step}<samplecharacteristics>", *[f"{pad}{step * 2}{x}" for x in inner],
             f"{pad}{step}</samplecharacteristics>", f"{pad}</format>"]
    return text[:m.start()] + "\n".join(lines) + text[m.end():]


FCP_SIZES = {(1280, 720): "720", (1920, 1080): "1080", (3840, 2160): "3840x2160", (4096, 2160): "4096x2160"}
FCP_RATES = {Fraction(24000, 1001): "2398", Fraction(24): "24", Fraction(25): "25", Fraction(30000, 1001): "2997",
             Fraction(30): "30", Fraction(50): "50", Fraction(60000, 1001): "5994", Fraction(60): "60"}


def fcp_format_name(t: Timeline) -> str:
    """Final Cut's name of the film's video format (FFVideoFormat720p24), or "" for a size it has no name for."""
    size, rate = FCP_SIZES.get((t.width, t.height)), FCP_RATES.get(Fraction(t.fps_num, t.fps_den))
    return f"FFVideoFormat{size}p{rate}" if size and rate else ""


def _find(parent, path: str, attr: str, value: str):
    """parent.find(f"{path}[@{attr}='{value}']") for any value: the adapter's own XPath breaks on a
    quote in a clip's name ("It's late.": "invalid predicate")."""
    return next((e for e in parent.findall(path) if e.get(attr) == value), None)


def _kinds(t: Timeline) -> list[str]:
    """The kind of every transition an editor sees (not cuts), in the film's order."""
    return [c.transition.kind for c in t.clips[:-1] if c.transition and c.transition.kind != "cut" and c.transition.frames]


# Final Cut Pro's own transitions (FxPlug ids as Final Cut writes them); the adapter writes none
FCPX_EFFECTS = {"dissolve": ("Cross Dissolve", "FxPlug:4731E73A-8DAC-4113-9A30-AE85B1761265"),
                "fade": ("Fade To Color", "FxPlug:F779C565-486D-4633-8035-0374B4DB8F5C"),  # black by default
                "wipe": ("Edge Wipe", "FxPlug:857E2FBA-98DB-411B-A88C-CE6ABC1F65D8")}


def _seconds(value: str) -> Fraction:
    """An FCPXML time ("31/4s", "3s") as a number of seconds."""
    return Fraction(value.removesuffix("s") or "0")


def _fcpx_time(value: Fraction) -> str:
    return f"{value.numerator}s" if value.denominator == 1 else f"{value.numerator}/{value.denominator}s"


def _fcpx_transitions(writer, sequence, t: Timeline) -> None:
    """Each transition of the film as a <transition> in the spine, between the clips it joins: it
    starts where the next clip's trimmed head begins and uses that head and the last clip's tail
    (the handles to_otio leaves), with the effect Final Cut knows it by."""
    from xml.etree import ElementTree

    spine = sequence.find("spine")
    items = [e for e in spine if e.tag in ("clip", "asset-clip", "ref-clip", "gap")]
    if len(items) != len(t.clips):
        return  # not the film's own picture track: leave it as the adapter wrote it
    effects: dict[str, str] = {}
    frame = Fraction(t.fps_den, t.fps_num)
    for clip, after in zip(t.clips, items[1:]):
        tr = clip.transition
        if not tr or tr.kind == "cut" or not tr.frames:
            continue
        name, uid = FCPX_EFFECTS.get(tr.kind, FCPX_EFFECTS["dissolve"])
        if name not in effects:
            effects[name] = writer._resource_id_generator()
            ElementTree.SubElement(writer.resource_element, "effect", {"id": effects[name], "name": name, "uid": uid})
        head = tr.frames - tr.frames // 2
        element = ElementTree.Element("transition", {
            "name": name, "offset": _fcpx_time(_seconds(after.get("offset")) - head * frame),
            "duration": _fcpx_time(tr.frames * frame)})
        ElementTree.SubElement(element, "filter-video", {"ref": effects[name], "name": name})
        spine.insert(list(spine).index(after), element)


# Final Cut Pro 7's own effects for our transitions (the adapter writes Cross Dissolve for all)
FCP7_EFFECTS = {"wipe": "Edge Wipe", "fade": "Dip to Color Dissolve"}


def _fcp7_effects(text: str, t: Timeline) -> str:
    """Each transition's effect in FCP7 XML: a wipe an Edge Wipe, a fade through black a Dip to
    Color Dissolve (black by default), the rest Cross Dissolve."""
    kinds = iter(_kinds(t))

    def effect(m: re.Match) -> str:
        name = FCP7_EFFECTS.get(next(kinds, "dissolve"))
        if name is None:
            return m.group(0)
        return f"{m.group(1)}{name}{m.group(2)}{name}{m.group(3)}"

    return re.sub(r"(<effect>\s*<name>)[^<]*(</name>\s*<effectid>)Cross Dissolve(</effectid>)", effect, text)


def _edl_wipes(text: str, t: Timeline) -> str:
    """A wipe as CMX3600 says it (`W001`, the standard horizontal wipe) instead of the adapter's
    dissolve `D`; a fade through black stays a dissolve (one event cannot dip to black)."""
    kinds = iter(_kinds(t))

    def event(m: re.Match) -> str:
        return m.group(1) + ("W001 " + m.group(3) + " " if next(kinds, "") == "wipe" else m.group(2))

    return re.sub(r"^(\d{3}\s+\S+\s+\S+\s+)(D (\d{3})    )", event, text, flags=re.M)


@contextmanager
def _fcpx_adapter_fixed(t: Timeline):
    """The FCPXML adapter, put right while it writes our timeline:
    - it finds a rate's frameDuration in a table keyed by 23.98 and 29.97, and reads rates back
      truncated to whole numbers (23 for 24000/1001), so the exact NTSC rates find none: the table
      knows the film's exact rate under both keys;
    - it names the format by running whatever `ffprobe` is on PATH on each clip's file, so its
      output depended on the machine: the format's name is the film's own (fcp_format_name);
    - it looks elements up by name with XPath built from the name: a quote in a line broke it;
    - it writes no transitions: ours go into the spine (_fcpx_transitions)."""
    import opentimelineio as otio

    # the module OTIO's plugin system loaded (by file), not a second import of it
    module = otio.adapters.from_name("fcpx_xml").module()
    table = module.FRAMERATE_FRAMEDURATION
    frame = Fraction(t.fps_den, t.fps_num)
    added = [k for k in (float(t.fps), int(t.fps)) if k not in table]
    for k in added:
        table[k] = f"{frame.numerator}/{frame.denominator}s"
    writer = module.FcpxOtio
    patched = {
        "_asset_by_path": lambda self, path: _find(self.resource_element, "./asset", "src", path),
        "_asset_by_id": lambda self, asset_id: _find(self.resource_element, "./asset", "id", asset_id),
        "_media_by_name": lambda self, name: _find(self.resource_element, "./media", "name", name),
        "_media_by_id": lambda self, media_id: _find(self.resource_element, "./media", "id", media_id),
        "_asset_clip_by_name": lambda self, name: _find(self.event_resource, "./asset-clip", "name", name),
    }
    to_sequence = writer.__dict__["_stack_to_sequence"]

    def with_transitions(self, stack, compound_clip=False):
        sequence = to_sequence(self, stack, compound_clip)
        if not compound_clip:
            _fcpx_transitions(self, sequence, t)
        return sequence

    patched["_stack_to_sequence"] = with_transitions
    saved = {name: writer.__dict__[name] for name in patched}
    saved_format_name = module.format_name
    module.format_name = lambda frame_rate, path: fcp_format_name(t)
    for name, fn in patched.items():
        setattr(writer, name, fn)
    try:
        yield
    finally:
        module.format_name = saved_format_name
        for name, fn in saved.items():
            setattr(writer, name, fn)
        for k in added:
            table.pop(k, None)


def write(t: Timeline, film: Film, root: Path, fmt: str, target: Path, media: Path | None = None,
          prompts: dict | None = None, origin: dict | None = None) -> int:
    """Write the timeline in one of FORMATS to `target` (atomically); with `media`, gather the files it
    uses there first (see gather_media). `origin`: the build's provenance, in an OTIO timeline's
    metadata, beside the other formats. Returns the number of media files gathered."""
    import opentimelineio as otio

    from storylang import atomic

    adapter, suffix = FORMATS[fmt]
    timeline = to_otio(t, film, root, prompts)
    if origin and fmt == "otio":
        timeline.metadata["storylang"]["provenance"] = origin
    # OTIO and EDL keep relative paths; Premiere, Resolve and Final Cut want absolute file URLs
    gathered = gather_media(timeline, media, target, relative=fmt in ("otio", "edl")) if media else 0
    if fmt == "edl":  # CMX3600 has one video track and no audio of ours worth keeping
        timeline.tracks[:] = [timeline.tracks[0]]
    try:
        with _fcpx_adapter_fixed(t) if fmt == "fcpx" else nullcontext():
            text = otio.adapters.write_to_string(timeline, adapter_name=adapter)
    except Exception as e:  # noqa: BLE001 - an adapter's own exception types vary
        raise ExportError(f"cannot write {fmt}: {e}") from e
    if fmt == "fcp7":
        text = _fcp7_effects(_fcp7_format(text, t), t)
    if fmt == "edl":
        text = _edl_wipes(text, t)
    if fmt == "edl" and not media:
        # without --media they would name files deep in the build cache, which Premiere then
        # misreads; with it they name the gathered copies, relative to the EDL, for relinking
        text = "".join(line for line in text.splitlines(keepends=True)
                       if not line.startswith(("* FROM CLIP: ", "* TO CLIP: ")))
    atomic.write_text(target, text)
    if origin and fmt != "otio":
        from storylang.provenance import write_beside

        write_beside(target, origin)
    return gathered
