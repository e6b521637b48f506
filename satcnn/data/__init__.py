"""Datasets and LightningDataModules: DeepSat patches and GeoTIFF road scenes."""

from satcnn.data.deepsat_datamodule import DeepSatDataModule

__all__ = ["DeepSatDataModule"]
