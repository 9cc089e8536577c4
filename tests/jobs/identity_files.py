"""INPUT_FORMAT = "files": one record per file, value the whole text; reducer passes it through."""

INPUT_FORMAT = "files"


def mapper(path, text):
    yield path, text


def reducer(path, texts):
    for text in texts:
        yield path, text
