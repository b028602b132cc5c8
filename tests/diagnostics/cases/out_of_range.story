steps 0  cfg 500
format 1281x720 @ 24fps
