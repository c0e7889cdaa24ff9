"""Instance library: build instances from public data (build, catalog, traces, spec) and generate synthetic ones."""
