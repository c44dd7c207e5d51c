"""The challenge metrics (SNR with the organizers' alignment, macro F) and the folder evaluator."""
from .evaluate import LeadScore, evaluate_folders, format_scores, score_lead, score_signals, snr_db, write_details

__all__ = ["LeadScore", "evaluate_folders", "format_scores", "score_lead", "score_signals", "snr_db",
           "write_details"]
