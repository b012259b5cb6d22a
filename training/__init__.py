"""mclrt.training"""
