raise SystemExit("test_bad_input.py is not written yet")
