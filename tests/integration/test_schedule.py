raise SystemExit("test_schedule.py is not written yet")
