"""model/keras"""
