"""mclrt.calibration"""
