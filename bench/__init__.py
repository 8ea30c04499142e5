"""Benchmarks of airflow-aliyun-tasks: run ``python -m bench`` (``make bench``); see ``run.py``."""
