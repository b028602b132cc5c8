"""The loader parses each file once per content, and includes in place."""

from storylang.loader import Loader


def test_a_file_is_parsed_again_only_when_its_content_changes(write_story, monkeypatch):
    import storylang.syntax.incremental as incremental

    calls = []
    real = incremental.Reparser.parse
    monkeypatch.setattr(incremental.Reparser, "parse", lambda self, text, file: calls.append(file) or real(self, text, file))
    write_story('character MARA\n  look "a"\n', name="bible.story")
    path = write_story('include "bible.story"\nEXT. A - DAY\n  shot 1 close on MARA 2s\n')
    loader = Loader()
    first = loader.load(path)
    assert [type(item).__name__ for _, item in first.items] == ["Character", "Scene"]
    assert first.files == ["film.story", "bible.story"]
    loader.load(path)
    assert len(calls) == 2  # nothing changed: nothing parsed again
    path.write_text(path.read_text() + '  shot 2 wide 2s\n')
    again = loader.load(path)
    assert len(calls) == 3 and len(again.items[1][1].body) == 2  # only the edited file
