"""Records: header parsing, WFDB signal I/O, labels and page images. The only package that reads or
writes challenge files; every other stage receives numbers in units."""
