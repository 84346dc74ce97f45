raise SystemExit("test_account_test.py is not written yet")
