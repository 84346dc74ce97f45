raise SystemExit("test_sent_copy.py is not written yet")
