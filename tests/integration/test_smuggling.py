raise SystemExit("test_smuggling.py is not written yet")
