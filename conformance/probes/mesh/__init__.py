"""The mesh area: the sample app's traffic and the monitors that scrape the mesh."""
