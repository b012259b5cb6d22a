"""mclrt.runtime"""
