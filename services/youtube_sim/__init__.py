"""tubewatch.youtube_sim"""
