"""mclrt.export"""
