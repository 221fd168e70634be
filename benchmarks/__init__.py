"""The benchmark suite: `python -m benchmarks [--quick] [--sizes N ...] [--only NAME ...]`.

One module per benchmark, each measuring the product against a baseline in the same run:

1. `index_build`: assets per second of `build_index` against the model's own encode rate;
2. `latency`: in-process p50/p99 with and without a query, exact and approximate index, recall@10;
3. `http`: gunicorn throughput and p99 under a load generator, against an empty route of the same app;
4. `memory`: resident and proportional memory of the server per library size and worker count;
5. `batch`: the batch issue's rates (`benchmarks.batch_throughput`);
6. `campaign`: many contacts answered together (`recommend_many`, `sequence_many`) against one at a time.

Results go to benchmarks/results/<name>.md and .png, and all tables to results/README.md.
Synthetic libraries (benchmarks/library.py) are cached in benchmarks/.work/.
"""
