raise SystemExit("test_secrets.py is not written yet")
