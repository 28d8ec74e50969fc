"""The app-metrics part: the app's scrape pool and series."""
