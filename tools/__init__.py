"""mclrt.tools"""
