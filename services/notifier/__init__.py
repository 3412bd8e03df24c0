"""tubewatch.notifier"""
