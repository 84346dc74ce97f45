raise SystemExit("test_notify.py is not written yet")
