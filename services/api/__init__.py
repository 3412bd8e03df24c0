"""tubewatch.api"""
