"""tubewatch.changes"""
