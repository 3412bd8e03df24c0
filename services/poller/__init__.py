"""tubewatch.poller"""
