"""Jobs, schedules and the sensor: everything that decides when and what runs."""
