raise SystemExit("test_sendmail.py is not written yet")
