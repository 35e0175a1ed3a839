"""leadline"""
