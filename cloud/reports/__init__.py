"""Reports built from the records: batch history, recall runs, periodic GSP reports (monthly record,
excursion log, calibration status), EPCIS 2.0 and KPIs, as JSON, CSV and PDF."""
