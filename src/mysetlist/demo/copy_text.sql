-- Table and columns: identifiers chosen by the caller (demo/copy_writer.py).
COPY {table} ({columns}) FROM STDIN
