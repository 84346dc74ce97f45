raise SystemExit("test_offline.py is not written yet")
